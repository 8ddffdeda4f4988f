"""The assembled network, laid out as VisionCore's ``MultiDatasetV1Model``.

Attribute names are VisionCore's so that state dicts map one to one: ``adapters.i``,
``frontend``, ``convnet``, ``modulator``, ``recurrent``, ``readouts.i``, ``baselines.i``,
``spike_history.i`` (``v1``, one session: ``adapter``, ``readout``, ``baseline``).
``core`` is a view of the shared stages (frontend, convnet, modulator, recurrent) for
pretrained-core loading and fine-tuning.

Forward: ``adapter_i -> frontend -> convnet -> modulator(behaviour) -> recurrent ->
readout_i (last frame) [+ history MLP_i] -> output_activation [+ baseline_i]``, then
clamped like VisionCore's training module does (>= -20 for a log-rate, >= 1e-8 for a rate).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from trainer.models.layers.norm_act import make_activation

CORE_STAGES = ("frontend", "convnet", "modulator", "recurrent")
Part = tuple[torch.Tensor | None, int, torch.Tensor | None, torch.Tensor | None]


class MultiDatasetV1Model(nn.Module):
    """Per-session adapters and readouts around one shared core (built by ``build_model``)."""

    def __init__(self, single: bool, output_activation: str, initial_input_channels: int,
                 baseline: dict):  # fmt: skip
        super().__init__()
        self.single = single
        self.initial_input_channels = initial_input_channels
        self.activation = make_activation(output_activation)
        self.log_rate = isinstance(self.activation, nn.Identity)
        self.baseline_enabled = bool(baseline.get("enabled"))
        self.baseline_activation = make_activation(baseline.get("activation", "relu"))
        self.has_vision = True
        self.modulator: nn.Module | None = None
        self._compiled_core: Callable | None = None

    # ---- per-session parts (lists, or the single-session names of model_type v1) ----

    def adapter_of(self, i: int) -> nn.Module:
        return self.adapter if self.single else self.adapters[i]

    def readout_of(self, i: int) -> nn.Module:
        return self.readout if self.single else self.readouts[i]

    def baseline_of(self, i: int) -> torch.Tensor:
        return self.baseline if self.single else self.baselines[i]

    @property
    def all_readouts(self) -> list[nn.Module]:
        return [self.readout] if self.single else list(self.readouts)

    @property
    def core(self) -> nn.ModuleDict:
        """The shared stages, by name (a view: its tensors are the model's)."""
        stages = {n: getattr(self, n) for n in CORE_STAGES if getattr(self, n) is not None}
        return nn.ModuleDict(stages)

    # ---- forward ----------------------------------------------------------------------

    def core_forward(self, x: torch.Tensor, behavior: torch.Tensor | None) -> torch.Tensor:
        x = self.convnet(self.frontend(x))
        if self.modulator is not None and behavior is not None:
            x = self.modulator(x, behavior)
        return self.recurrent(x)

    def compile_core(self, **options: Any) -> None:
        """``torch.compile`` the shared stages, which every path (``forward``,
        ``forward_sessions``: training and validation) runs through ``_core``.

        The core is where the time goes and it does not depend on the session, so it is
        one graph whatever sessions a batch holds; the per-session adapters and readouts
        stay eager (compiled, they would recompile for every session index). The unbound
        function takes the model as an argument, so a deep copy of the model (its
        compiled function is shared) still runs its own weights.
        """
        # Static shapes unless asked: a recompile (eval mode, a last short batch, another
        # model in the process) would otherwise switch to symbolic shapes, which inductor
        # 2.13 fails to lower for strided 1x1x1 ResNet shortcuts ("Invalid ranges").
        options.setdefault("dynamic", False)
        self._compiled_core = torch.compile(type(self).core_forward, **options)

    def _core(self, x: torch.Tensor, behavior: torch.Tensor | None) -> torch.Tensor:
        if self._compiled_core is None:
            return self.core_forward(x, behavior)
        return self._compiled_core(self, x, behavior)

    def _input(self, stim: torch.Tensor | None, i: int, behavior: torch.Tensor | None
               ) -> torch.Tensor:  # fmt: skip
        if self.has_vision and stim is not None:
            return self.adapter_of(i)(stim)
        # Behaviour-only models: one constant pixel with the channels the core was built for.
        ref = behavior if behavior is not None else stim
        return torch.ones(ref.shape[0], self.initial_input_channels, 1, 1, 1,
                          device=ref.device, dtype=ref.dtype)  # fmt: skip

    def head(self, features: torch.Tensor, i: int, history: torch.Tensor | None) -> torch.Tensor:
        out = self.readout_of(i)(features)
        if history is not None and hasattr(self, "spike_history"):
            out = out + self.spike_history[i](history.reshape(history.shape[0], -1))
        out = self.activation(out)
        if self.baseline_enabled:
            out = out + self.baseline_activation(self.baseline_of(i))
        return torch.clamp(out, min=-20.0 if self.log_rate else 1e-8)

    def forward(self, stim: torch.Tensor | None, dataset_idx: int = 0,
                behavior: torch.Tensor | None = None, history: torch.Tensor | None = None,
                ) -> torch.Tensor:  # fmt: skip
        with parametrize.cached():
            x = self._input(stim, dataset_idx, behavior)
            return self.head(self._core(x, behavior), dataset_idx, history)

    def forward_sessions(self, parts: Sequence[Part]) -> list[torch.Tensor]:
        """Outputs for several sessions' batches ``(stim, idx, behaviour, history)``.

        After its own adapter, sessions whose inputs have one shape share a single core
        pass on their concatenated samples (one large convolution is cheaper than several
        small ones); only BatchNorm in training sees the whole batch.
        """
        with parametrize.cached():
            inputs = [self._input(stim, i, beh) for stim, i, beh, _ in parts]
            groups: dict[tuple, list[int]] = {}
            for k, (x, (_, _, beh, _)) in enumerate(zip(inputs, parts, strict=True)):
                groups.setdefault((tuple(x.shape[1:]), _shape(beh)), []).append(k)
            outputs: list[torch.Tensor | None] = [None] * len(parts)
            for members in groups.values():
                x = torch.cat([inputs[k] for k in members])
                behs = [parts[k][2] for k in members]
                beh = None if behs[0] is None else torch.cat(behs)  # type: ignore[arg-type]
                features = self._core(x, beh)
                sizes = [inputs[k].shape[0] for k in members]
                for k, chunk in zip(members, features.split(sizes), strict=True):
                    outputs[k] = self.head(chunk, parts[k][1], parts[k][3])
        return outputs  # type: ignore[return-value]

    def rate(self, output: torch.Tensor) -> torch.Tensor:
        """Expected spike count per bin from the forward output."""
        return output.exp() if self.log_rate else output

    def init_readout_bias(self, dataset_idx: int, mean_rates: Sequence[float]) -> None:
        """Start each unit at its mean rate: the loss then starts at the null model's."""
        readout = self.readout_of(dataset_idx)
        if getattr(readout, "bias", None) is None:
            return
        rates = torch.tensor(mean_rates, dtype=torch.float64).clamp_min(1e-6)
        bias = rates.log() if self.log_rate else _inverse_softplus(rates)
        with torch.no_grad():
            readout.bias.copy_(bias.to(readout.bias.dtype))


def _shape(tensor: torch.Tensor | None) -> tuple[int, ...] | None:
    return None if tensor is None else tuple(tensor.shape[1:])


def _inverse_softplus(y: torch.Tensor) -> torch.Tensor:
    return torch.where(y > 20, y, torch.log(torch.expm1(y)))
