"""Modulators: let behaviour (eye position, saccades, ...) change the visual features.

``concat`` appends a behaviour embedding as extra channels, ``film`` scales and shifts
each channel, ``convgru`` runs one gated update whose hidden state is the feature map and
whose input is the behaviour embedding. Without a vision core only ``concat`` applies:
the embedding itself becomes a 1x1 feature map (a behaviour-only model).
"""

from __future__ import annotations

import torch
from torch import nn

from trainer.models.components.layers import ACTIVATIONS, make_activation
from trainer.models.registry import BuildContext, Field, register


def behavior_mlp(d_in: int, hidden: int, d_out: int, act: str) -> nn.Module:
    """Linear map, or a one-hidden-layer MLP when ``hidden > 0``."""
    if hidden <= 0:
        return nn.Linear(d_in, d_out)
    return nn.Sequential(nn.Linear(d_in, hidden), make_activation(act), nn.Linear(hidden, d_out))


def _broadcast(embedding: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``(B, F)`` -> ``(B, F, T, H, W)`` matching ``like``'s time and space."""
    b, f = embedding.shape
    return embedding.view(b, f, 1, 1, 1).expand(b, f, *like.shape[2:])


class ConcatModulator(nn.Module):
    def __init__(self, behavior_dim: int, feature_dim: int, hidden: int, act: str):
        super().__init__()
        self.embed = behavior_mlp(behavior_dim, hidden, feature_dim, act)

    def forward(self, x: torch.Tensor | None, behavior: torch.Tensor) -> torch.Tensor:
        e = self.embed(behavior)
        if x is None:
            return e.view(*e.shape, 1, 1, 1)
        return torch.cat([x, _broadcast(e, x)], dim=1)


class FiLMModulator(nn.Module):
    """``x * (1 + gamma(b)) + beta(b)``; zero-initialised so training starts unmodulated."""

    def __init__(self, behavior_dim: int, channels: int, hidden: int, act: str):
        super().__init__()
        self.embed = behavior_mlp(behavior_dim, hidden, 2 * channels, act)
        last = self.embed if isinstance(self.embed, nn.Linear) else self.embed[-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def forward(self, x: torch.Tensor, behavior: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.embed(behavior).chunk(2, dim=1)
        return x * (1 + _broadcast(gamma, x)) + _broadcast(beta, x)


class ConvGRUModulator(nn.Module):
    """One ConvGRU update: hidden state = features, input = broadcast behaviour embedding."""

    def __init__(
        self, behavior_dim: int, channels: int, feature_dim: int, hidden: int, k: int, act: str
    ):
        super().__init__()
        self.embed = behavior_mlp(behavior_dim, hidden, feature_dim, act)
        self.gates = nn.Conv3d(
            channels + feature_dim, 2 * channels, (1, k, k), padding=(0, k // 2, k // 2)
        )
        self.candidate = nn.Conv3d(
            channels + feature_dim, channels, (1, k, k), padding=(0, k // 2, k // 2)
        )

    def forward(self, x: torch.Tensor, behavior: torch.Tensor) -> torch.Tensor:
        e = _broadcast(self.embed(behavior), x)
        update, reset = torch.sigmoid(self.gates(torch.cat([x, e], 1))).chunk(2, dim=1)
        proposal = torch.tanh(self.candidate(torch.cat([reset * x, e], 1)))
        return (1 - update) * x + update * proposal


_MLP = {
    "hidden_dim": Field(int, 0, doc="hidden layer of the behaviour MLP; 0 = linear"),
    "activation": Field(str, "gelu", choices=ACTIVATIONS),
}


@register("modulator", "none", doc="No behavioural modulation.")
def build_no_modulator(params: dict, ctx: BuildContext) -> tuple[nn.Module | None, int]:
    return None, ctx.in_channels


@register(
    "modulator",
    "concat",
    {"feature_dim": Field(int, 8, doc="behaviour embedding channels appended"), **_MLP},
    doc="Append a behaviour embedding as extra feature channels.",
)
def build_concat(params: dict, ctx: BuildContext) -> tuple[nn.Module | None, int]:
    module = ConcatModulator(
        ctx.behavior_dim, params["feature_dim"], params["hidden_dim"], params["activation"]
    )
    return module, (ctx.in_channels if ctx.has_vision else 0) + params["feature_dim"]


@register("modulator", "film", dict(_MLP), doc="Per-channel gain and offset from behaviour.")
def build_film(params: dict, ctx: BuildContext) -> tuple[nn.Module | None, int]:
    module = FiLMModulator(
        ctx.behavior_dim, ctx.in_channels, params["hidden_dim"], params["activation"]
    )
    return module, ctx.in_channels


@register(
    "modulator",
    "convgru",
    {"feature_dim": Field(int, 8), "kernel_size": Field(int, 3), **_MLP},
    doc="Gated (GRU-style) update of the feature map driven by behaviour.",
)
def build_convgru_modulator(params: dict, ctx: BuildContext) -> tuple[nn.Module | None, int]:
    module = ConvGRUModulator(
        ctx.behavior_dim,
        ctx.in_channels,
        params["feature_dim"],
        params["hidden_dim"],
        params["kernel_size"],
        params["activation"],
    )
    return module, ctx.in_channels
