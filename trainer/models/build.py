"""``build_model``: a resolved model config (``trainer.configs.model_schema``) + the
sessions' shapes -> ``MultiDatasetV1Model``.

Sizes VisionCore reads from its dataset configs come from the sessions here: each
readout's ``n_units``, the behaviour width (a config ``behavior_dim`` that disagrees is an
error, where VisionCore would crash on the first batch), and, for ``learnable_temporal``
with ``kernel_size: null``, the number of lags.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from trainer.configs.model_schema import has_vision
from trainer.contract.errors import ConfigError, first_line
from trainer.data.datasets import SessionInfo
from trainer.models.components import (
    build_adapter,
    build_convnet,
    build_frontend,
    build_recurrent,
)
from trainer.models.components.modulator import build_modulator
from trainer.models.components.readout import build_readout
from trainer.models.layers.mlp import MLP
from trainer.models.model import MultiDatasetV1Model


def build_model(config: dict, sessions: Sequence[SessionInfo]) -> MultiDatasetV1Model:
    """Instantiate a resolved model config for ``sessions`` (readout ``i`` = session ``i``)."""
    source = config.get("name") or "model config"
    if not sessions:
        raise ConfigError(source, "sessions", "no sessions to build readouts for")
    single = config["model_type"] == "v1"
    if single and len(sessions) != 1:
        raise ConfigError(
            source, "model_type", f"'v1' is one session; got {len(sessions)}: use v1multi"
        )
    n_lags, behavior_dim = _shared_shape(sessions, source)
    channels = config["initial_input_channels"]
    model = MultiDatasetV1Model(single, config["output_activation"], channels, config["baseline"])
    model.has_vision = has_vision(config)
    adapters = [build_adapter(config["adapter"]) for _ in sessions]
    model.frontend, channels = build_frontend(
        config["frontend"], channels, n_lags, config["sampling_rate"], source
    )
    model.convnet, channels = build_convnet(config["convnet"], channels)
    model.modulator, channels = build_modulator(
        config["modulator"]["type"], config["modulator"]["params"], channels,
        _behaviour_width(config, behavior_dim, source),
    )  # fmt: skip
    model.recurrent, channels = build_recurrent(config["recurrent"], channels)
    rspec = config["readout"]
    readouts = [
        build_readout(rspec["type"], rspec["params"], channels, s.n_units) for s in sessions
    ]
    if single:
        model.adapter, model.readout = adapters[0], readouts[0]
    else:
        model.adapters, model.readouts = nn.ModuleList(adapters), nn.ModuleList(readouts)
    if config["baseline"]["enabled"]:
        init = config["baseline"]["init_value"]
        values = [nn.Parameter(torch.full((s.n_units,), float(init))) for s in sessions]
        if single:
            model.baseline = values[0]
        else:
            model.baselines = nn.ParameterList(values)
    if config["model_type"] == "v1multi_history":
        model.spike_history = nn.ModuleList(_history_mlp(config, s.n_units) for s in sessions)
    for i, info in enumerate(sessions):
        _dry_run(model, info, i, config["initial_input_channels"])
        if len(info.mean_rates) == info.n_units:
            model.init_readout_bias(i, info.mean_rates)
    return model


def _history_mlp(config: dict, n_units: int) -> MLP:
    params = dict(config["history_encoder"]["params"])
    num_lags = params.pop("num_lags")
    return MLP(num_lags * n_units, params.pop("hidden_dims"), n_units, **params)


def _behaviour_width(config: dict, behavior_dim: int, source: str) -> int:
    kind, params = config["modulator"]["type"], config["modulator"]["params"]
    if kind == "none":
        return behavior_dim
    if behavior_dim <= 0:
        raise ConfigError(
            source, "modulator.type", f"{kind!r} needs behaviour; the sessions have none"
        )
    declared = params.get("behavior_dim")
    if declared is not None and declared != behavior_dim:
        raise ConfigError(
            source,
            "modulator.params.behavior_dim",
            f"{declared} but the sessions have {behavior_dim} behaviour columns; "
            "set it to null (taken from the data) or match the dataset config",
        )
    return behavior_dim


def _shared_shape(sessions: Sequence[SessionInfo], source: str) -> tuple[int, int]:
    """Lags and behaviour width must agree across sessions: the core is shared."""
    for attr in ("n_lags", "behavior_dim"):
        values = {getattr(s, attr) for s in sessions}
        if len(values) > 1:
            raise ConfigError(
                source, attr, f"sessions disagree ({sorted(values)}); a shared core needs one value"
            )
    return sessions[0].n_lags, sessions[0].behavior_dim


@torch.no_grad()
def _dry_run(model: MultiDatasetV1Model, info: SessionInfo, i: int, channels: int) -> None:
    """One eval pass on zeros: shape errors surface now, lazy layers exist before the
    optimizer does, and an empty or non-finite output is a config error."""
    was_training = model.training
    model.eval()
    stim = torch.zeros(1, channels, info.n_lags, *info.image_shape)
    behavior = torch.zeros(1, info.behavior_dim) if info.behavior_dim > 0 else None
    try:
        out = model(stim, i, behavior)
    except (RuntimeError, ValueError) as error:
        first = first_line(error)
        raise ConfigError(
            info.name,
            "image_shape",
            f"{info.image_shape} x {info.n_lags} lags does not fit this model: {first}",
        ) from None
    finally:
        model.train(was_training)
    if out.numel() == 0 or not math.isfinite(float(out.sum())):
        raise ConfigError(info.name, "image_shape", "model output is empty or not finite")
