"""Component builders: a resolved ``{type, params}`` spec -> ``(module, output channels)``."""

from __future__ import annotations

from typing import Any

from torch import nn

from trainer.contract.errors import ConfigError
from trainer.models.components.adapter import AffineAdapter
from trainer.models.components.convnet import ConvNet
from trainer.models.components.frontend import DAModel, LearnableTemporalConv, TemporalBasis
from trainer.models.components.recurrent import ConvGRU, RecurrentWrapper
from trainer.models.layers.block import ConvBlock

_CONV_KEYS = ("stride", "dilation", "padding_mode", "aa_signal", "aa_window", "aa_window_kwargs",
              "use_weight_norm", "keep_unit_norm", "weight_norm_dim")  # fmt: skip


def build_adapter(spec: dict[str, Any]) -> nn.Module:
    if spec["type"] == "none":
        return nn.Identity()
    return AffineAdapter(**spec["params"])


def build_frontend(spec: dict[str, Any], channels: int, n_lags: int, sampling_rate: int,
                   source: str = "model config") -> tuple[nn.Module, int]:  # fmt: skip
    kind, p = spec["type"], spec["params"]
    if kind == "learnable_temporal" and (p["kernel_size"] or 0) > n_lags:
        raise ConfigError(
            source,
            "frontend.params.kernel_size",
            f"{p['kernel_size']} exceeds the dataset's {n_lags} lags; use at most {n_lags} or null",
        )
    if kind == "none":
        return nn.Identity(), channels
    if kind == "adapter":
        return AffineAdapter(**p), channels
    if kind == "learnable_temporal":
        module = LearnableTemporalConv(
            p["kernel_size"] or n_lags, p["num_channels"], p["init_type"], p["causal"],
            p["split_MP"], p["bias"], **{k: p[k] for k in _CONV_KEYS},
        )  # fmt: skip
        return module, channels * p["num_channels"]
    if kind == "da":
        return DAModel(sampling_rate, **p), 1
    if kind == "temporal_basis":
        module = TemporalBasis(**p)
        return module, channels * module.num_basis
    block = dict(p)
    module = ConvBlock(channels, block.pop("out_channels"), **block)
    return module, module.output_channels


def build_convnet(spec: dict[str, Any], channels: int) -> tuple[nn.Module, int]:
    if spec["type"] == "none":
        return nn.Identity(), channels
    net = ConvNet(spec["type"], channels, spec["params"])
    return net, net.output_channels


def build_recurrent(spec: dict[str, Any], channels: int) -> tuple[nn.Module, int]:
    kind, p = spec["type"], spec["params"]
    if kind == "none":
        return nn.Identity(), channels
    if kind == "convgru":
        return ConvGRU(channels, p["hidden_dim"], p["kernel_size"], p["n_layers"]), p["hidden_dim"]
    rnn = {"num_layers": p["num_layers"], "dropout": p["dropout"], "bias": p["bias"]}
    return RecurrentWrapper(kind, p["hidden_dim"], channels, **rnn), p["hidden_dim"]
