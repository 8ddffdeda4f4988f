"""The assembled network: one shared vision core and one readout per session.

``MultiReadoutModel.core`` holds every shared component and ``.readouts[i]`` the readout
of session ``i``; pretrained-core loading and freezing address parameters by these
prefixes (``core.``, ``readouts.``), so they are part of the interface.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from trainer.contract.errors import ConfigError
from trainer.data.datasets import SessionInfo
from trainer.models.components.layers import last_frame
from trainer.models.registry import BuildContext, component

CORE_KINDS = ("adapter", "frontend", "convnet", "modulator", "recurrent")
OUTPUT_ACTIVATIONS = ("softplus", "none")


class VisionCore(nn.Module):
    """stimulus ``(B, 1, L, H, W)`` + behaviour ``(B, D)`` -> features ``(B, C, H', W')``."""

    def __init__(self, parts: dict[str, nn.Module | None], has_vision: bool):
        super().__init__()
        self.has_vision = has_vision
        for kind in CORE_KINDS:
            setattr(self, kind, parts[kind])

    def forward(self, stim: torch.Tensor | None, behavior: torch.Tensor | None) -> torch.Tensor:
        x = stim if self.has_vision else None
        for kind in ("adapter", "frontend", "convnet"):
            stage = getattr(self, kind)
            if stage is not None and x is not None:
                x = stage(x)
        if self.modulator is not None:
            x = self.modulator(x, behavior)
        if self.recurrent is not None:
            x = self.recurrent(x)
        return last_frame(x)


class MultiReadoutModel(nn.Module):
    """Shared core, per-session readouts, output activation.

    With ``output_activation: none`` the output is a log-rate (``log_rate`` is True) and
    the rate is ``exp`` of it; with ``softplus`` the output is the rate itself.
    """

    def __init__(self, core: VisionCore, readouts: Sequence[nn.Module], output_activation: str):
        super().__init__()
        self.core = core
        self.readouts = nn.ModuleList(readouts)
        self.log_rate = output_activation == "none"
        self.activation = nn.Identity() if self.log_rate else nn.Softplus()

    def forward(
        self, stim: torch.Tensor | None, dataset_idx: int, behavior: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.activation(self.readouts[dataset_idx](self.core(stim, behavior)))

    def forward_sessions(
        self, parts: Sequence[tuple[torch.Tensor | None, int, torch.Tensor | None]]
    ) -> list[torch.Tensor]:
        """Outputs for several sessions' batches ``(stim, dataset_idx, behavior)``, in order.

        Sessions whose inputs have the same shape share one core pass on their
        concatenated samples: one large convolution is cheaper than several small ones
        (~8 % of a CPU training step for four sessions). The core treats samples
        independently (only BatchNorm, in training, sees the whole batch), so the outputs
        equal per-session passes.
        """
        groups: dict[tuple, list[int]] = {}
        for i, (stim, _, behavior) in enumerate(parts):
            key = (_shape(stim), _shape(behavior))
            groups.setdefault(key, []).append(i)
        outputs: list[torch.Tensor | None] = [None] * len(parts)
        for members in groups.values():
            stim = _cat([parts[i][0] for i in members])
            behavior = _cat([parts[i][2] for i in members])
            features = self.core(stim, behavior)
            sizes = [_batch_size(parts[i]) for i in members]
            for i, chunk in zip(members, features.split(sizes), strict=True):
                outputs[i] = self.activation(self.readouts[parts[i][1]](chunk))
        return outputs  # type: ignore[return-value]

    def rate(self, output: torch.Tensor) -> torch.Tensor:
        """Expected spike count per bin from the forward output."""
        return output.exp() if self.log_rate else output

    def init_readout_bias(self, dataset_idx: int, mean_rates: Sequence[float]) -> None:
        """Start each unit at its mean rate: the loss then starts at the null model's."""
        readout = self.readouts[dataset_idx]
        if getattr(readout, "bias", None) is None:
            return
        rates = torch.tensor(mean_rates, dtype=torch.float64).clamp_min(1e-6)
        bias = rates.log() if self.log_rate else _inverse_softplus(rates)
        with torch.no_grad():
            readout.bias.copy_(bias.to(readout.bias.dtype))


def _shape(tensor: torch.Tensor | None) -> tuple[int, ...] | None:
    """Shape without the batch dimension (``None`` for a missing input)."""
    return None if tensor is None else tuple(tensor.shape[1:])


def _cat(tensors: list[torch.Tensor | None]) -> torch.Tensor | None:
    return None if tensors[0] is None else torch.cat(tensors)  # type: ignore[arg-type]


def _batch_size(part: tuple[torch.Tensor | None, int, torch.Tensor | None]) -> int:
    stim, _, behavior = part
    return int((stim if stim is not None else behavior).shape[0])  # type: ignore[union-attr]


def _inverse_softplus(y: torch.Tensor) -> torch.Tensor:
    return torch.where(y > 20, y, torch.log(torch.expm1(y)))


def build_model(config: dict, sessions: Sequence[SessionInfo]) -> MultiReadoutModel:
    """Instantiate a resolved model config (see ``trainer.models.config``) for ``sessions``."""
    source = config.get("name", "model config")
    if not sessions:
        raise ConfigError(source, "sessions", "no sessions to build readouts for")
    n_lags, behavior_dim = _shared_shape(sessions, source)
    has_vision = any(config[k]["type"] != "none" for k in ("adapter", "frontend", "convnet"))
    ctx = BuildContext(config["initial_input_channels"], n_lags, behavior_dim, has_vision, source)
    parts, channels = {}, ctx.in_channels
    for kind in CORE_KINDS:
        spec = config[kind]
        step_ctx = BuildContext(channels, n_lags, behavior_dim, has_vision, source)
        parts[kind], channels = component(kind, spec["type"]).build(spec["params"], step_ctx)
    core = VisionCore(parts, has_vision)
    readouts = []
    for info in sessions:
        spatial = _core_output_hw(core, info, config["initial_input_channels"])
        rctx = BuildContext(
            channels, n_lags, behavior_dim, has_vision, source, info.n_units, spatial
        )
        readouts.append(
            component("readout", config["readout"]["type"]).build(
                config["readout"]["params"], rctx
            )[0]
        )
    model = MultiReadoutModel(core, readouts, config["output_activation"])
    for i, info in enumerate(sessions):
        if len(info.mean_rates) == info.n_units:
            model.init_readout_bias(i, info.mean_rates)
    return model


def _shared_shape(sessions: Sequence[SessionInfo], source: str) -> tuple[int, int]:
    """Lags and behaviour dims must agree across sessions: the core is shared."""
    for attr in ("n_lags", "behavior_dim"):
        values = {getattr(s, attr) for s in sessions}
        if len(values) > 1:
            raise ConfigError(
                source, attr, f"sessions disagree ({sorted(values)}); a shared core needs one value"
            )
    return sessions[0].n_lags, sessions[0].behavior_dim


@torch.no_grad()
def _core_output_hw(core: VisionCore, info: SessionInfo, channels: int) -> tuple[int, int]:
    """The core's output height/width for this session, found by a dry run on zeros."""
    was_training = core.training
    core.eval()
    stim = torch.zeros(1, channels, info.n_lags, *info.image_shape)
    behavior = torch.zeros(1, max(info.behavior_dim, 0))
    try:
        out = core(stim, behavior)
    except RuntimeError as error:  # e.g. a valid-padded kernel larger than the image
        first = (str(error).splitlines() or [""])[0]
        raise ConfigError(
            info.name, "image_shape", f"{info.image_shape} is too small for this core: {first}"
        ) from None
    finally:
        core.train(was_training)
    if out.shape[-1] * out.shape[-2] == 0 or not math.isfinite(float(out.sum())):
        raise ConfigError(
            info.name, "image_shape", f"core output is empty for image {info.image_shape}"
        )
    return int(out.shape[-2]), int(out.shape[-1])
