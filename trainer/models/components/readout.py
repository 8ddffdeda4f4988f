"""Readouts: one per session, mapping the shared core's features to that session's units.

The Gaussian readout gives each unit a learned 2-D position where it samples the feature
map (``grid_sample``, so positions are continuous and get gradients), plus feature
weights and a bias. During training positions are jittered by a learned std, which
spreads the gradient beyond the 2x2 bilinear neighbourhood and lets units that start near
the centre find receptive fields elsewhere; evaluation uses the mean position.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from trainer.models.registry import BuildContext, Field, register


class GaussianReadout(nn.Module):
    """``(B, C, H, W) -> (B, N)``; ``mean[:, 0]`` is x, ``mean[:, 1]`` is y, both in [-1, 1]."""

    # Positions and jitter widths are 2-D but are not weights: never weight-decay them.
    no_weight_decay = ("mean", "std")

    def __init__(self, c_in: int, n_units: int, params: dict):
        super().__init__()
        self.sample = params["sample"]
        self.mean = nn.Parameter(torch.randn(n_units, 2) * params["init_mean_scale"])
        # Only a jittering readout has a std: an unused parameter would break DDP's
        # gradient bucketing (it waits for a gradient that never comes).
        if self.sample:
            self.std = nn.Parameter(torch.full((n_units, 2), params["init_std"]))
        self.features = nn.Parameter(
            torch.randn(n_units, c_in) * params["init_feature_scale"] / math.sqrt(c_in)
        )
        self.bias = nn.Parameter(torch.zeros(n_units)) if params["bias"] else None

    def positions(self, batch: int) -> torch.Tensor:
        """Sampling grid ``(B, N, 1, 2)``: jittered while training, the mean otherwise."""
        mean = self.mean.unsqueeze(0).expand(batch, -1, -1)
        if self.training and self.sample:
            mean = mean + self.std.abs() * torch.randn_like(mean)
        # NaN positions (a diverged run) make grid_sample read out of bounds: a segfault.
        return torch.nan_to_num(mean, nan=0.0).clamp(-1.0, 1.0).unsqueeze(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grid = self.positions(x.shape[0]).to(x.dtype)
        sampled = F.grid_sample(x, grid, align_corners=False, padding_mode="border")
        out = torch.einsum("bcn,nc->bn", sampled.squeeze(-1), self.features.to(x.dtype))
        return out if self.bias is None else out + self.bias


class LinearReadout(nn.Module):
    """Fully connected ``(B, C, H, W) -> (B, N)``: needed when there is no space to sample."""

    def __init__(self, c_in: int, spatial: tuple[int, int], n_units: int, bias: bool):
        super().__init__()
        d = c_in * spatial[0] * spatial[1]
        self.features = nn.Parameter(torch.randn(n_units, d) * (0.1 / math.sqrt(d)))
        self.bias = nn.Parameter(torch.zeros(n_units)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x.flatten(1) @ self.features.to(x.dtype).T
        return out if self.bias is None else out + self.bias


@register(
    "readout",
    "gaussian",
    {
        "bias": Field(bool, True),
        "init_mean_scale": Field(float, 0.1, doc="std of initial positions around the centre"),
        # Small: a wide jitter blurs the narrow-band (Gabor) feature maps and slows
        # learning severalfold on the synthetic data; 0.05 is ~0.6 px at 24 px.
        "init_std": Field(float, 0.05, doc="initial position jitter (grid units; image = [-1, 1])"),
        "init_feature_scale": Field(float, 0.1),
        "sample": Field(bool, True, doc="jitter positions during training"),
    },
    doc="Per-unit learned position (grid_sample) + feature weights + bias.",
)
def build_gaussian(params: dict, ctx: BuildContext) -> tuple[nn.Module | None, int]:
    return GaussianReadout(ctx.in_channels, ctx.n_units, params), ctx.n_units


@register(
    "readout", "linear", {"bias": Field(bool, True)}, doc="Dense readout of the whole feature map."
)
def build_linear(params: dict, ctx: BuildContext) -> tuple[nn.Module | None, int]:
    return LinearReadout(ctx.in_channels, ctx.spatial, ctx.n_units, params["bias"]), ctx.n_units
