"""Small shared building blocks: activations, norms, per-frame 2-D convolution."""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = ("relu", "elu", "gelu", "silu", "softplus", "square", "log_softplus", "identity")
NORMS = ("none", "batch", "group")


class Square(nn.Module):
    """x**2: the energy-model nonlinearity (complex cells sum squared quadrature pairs)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * x


class LogSoftplus(nn.Module):
    """``log(softplus(x))``, finite for every ``x``: inputs below ``FLOOR`` count as ``FLOOR``.

    The core's last activation for log-rate models: the readout's ``exp(w . f + b)`` of
    one such feature is ``e^b * softplus(h)^w`` — the saturating LN shape of V1 units —
    where plain features would force an exponential (convex) rate curve. Down to the floor
    the value is exact (``softplus(-80)`` is still a normal float32, and ``log`` of it is
    ``-80``); a clamp instead of a ``where`` branch keeps it cheap: it runs on the whole
    feature map every step (a ``where`` version cost ~15 % of a CPU training step).
    """

    FLOOR = -80.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log(nn.functional.softplus(x.clamp(min=self.FLOOR)))


def make_activation(name: str) -> nn.Module:
    """An activation module by config name (names are validated by the schema)."""
    table = {
        "relu": nn.ReLU,
        "elu": nn.ELU,
        "gelu": nn.GELU,
        "silu": nn.SiLU,
        "softplus": nn.Softplus,
        "square": Square,
        "log_softplus": LogSoftplus,
        "identity": nn.Identity,
    }
    return table[name]()


def make_norm(name: str, channels: int) -> nn.Module:
    """A 2-D normalisation layer; ``group`` uses up to 8 groups and works at any batch size."""
    if name == "batch":
        return nn.BatchNorm2d(channels)
    if name == "group":
        groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
        return nn.GroupNorm(groups, channels)
    return nn.Identity()


def per_frame(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Apply a 2-D module to every time step of ``(B, C, T, H, W)``.

    Spatial processing shares weights across time; folding time into the batch lets it
    run as fast 2-D convolutions instead of 3-D ones with a temporal kernel of 1.
    """
    b, _, t, _, _ = x.shape
    frames = x.permute(0, 2, 1, 3, 4).flatten(0, 1)
    out = module(frames)
    return out.unflatten(0, (b, t)).permute(0, 2, 1, 3, 4)


def last_frame(x: torch.Tensor) -> torch.Tensor:
    """The most recent time step of ``(B, C, T, H, W)`` (time axis is chronological)."""
    return x[:, :, -1]
