"""Adapters: bring every session's stimulus onto one learnable sampling grid.

Sessions can differ in image size and scale; the adapter blurs with a learnable Gaussian
(anti-aliasing) and resamples with ``grid_sample`` through a learnable scale or affine
transform, so the shared core always sees the same grid.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from trainer.models.registry import BuildContext, Field, register


class GridAdapter(nn.Module):
    """Learnable blur + resample of ``(B, C, T, H, W)`` to ``grid_size`` x ``grid_size``."""

    # 2-D parameters that are not weights: decaying them would pull the grid towards 0.
    no_weight_decay = ("affine",)

    def __init__(self, grid_size: int | None, init_sigma: float, transform: str) -> None:
        super().__init__()
        self.grid_size = grid_size
        self.radius = max(1, math.ceil(3 * init_sigma))
        self.log_sigma = (
            nn.Parameter(torch.tensor(math.log(init_sigma))) if init_sigma > 0 else None
        )
        self.transform = transform
        if transform == "scale":
            self.scale = nn.Parameter(torch.ones(2))
        elif transform == "affine":
            self.affine = nn.Parameter(torch.eye(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        frames = x.reshape(b * c * t, 1, h, w)
        if self.log_sigma is not None:
            frames = self._blur(frames)
        out_hw = (self.grid_size, self.grid_size) if self.grid_size else (h, w)
        if self.transform != "none" or out_hw != (h, w):
            theta = self._theta(frames).expand(frames.shape[0], 2, 3)
            grid = F.affine_grid(theta, [frames.shape[0], 1, *out_hw], align_corners=False)
            frames = F.grid_sample(frames, grid, align_corners=False, padding_mode="zeros")
        return frames.reshape(b, c, t, *frames.shape[-2:])

    def _blur(self, frames: torch.Tensor) -> torch.Tensor:
        offsets = torch.arange(-self.radius, self.radius + 1, device=frames.device)
        kernel = torch.exp(-0.5 * (offsets / self.log_sigma.exp()) ** 2)
        kernel = (kernel / kernel.sum()).to(frames.dtype)
        pad = self.radius
        frames = F.conv2d(
            F.pad(frames, (pad, pad, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1)
        )
        return F.conv2d(F.pad(frames, (0, 0, pad, pad), mode="replicate"), kernel.view(1, 1, -1, 1))

    def _theta(self, frames: torch.Tensor) -> torch.Tensor:
        if self.transform == "affine":
            return self.affine.unsqueeze(0)
        if self.transform == "scale":
            diag = torch.diag(self.scale)
            return torch.cat([diag, diag.new_zeros(2, 1)], dim=1).unsqueeze(0)
        return torch.eye(2, 3, dtype=frames.dtype, device=frames.device).unsqueeze(0)


@register("adapter", "none", doc="Pass the stimulus through unchanged.")
def build_no_adapter(params: dict, ctx: BuildContext) -> tuple[nn.Module | None, int]:
    return None, ctx.in_channels


@register(
    "adapter",
    "adapter",
    {
        "grid_size": Field(int, None, nullable=True, doc="output side in pixels; null keeps input"),
        "init_sigma": Field(float, 1.0, doc="initial blur std in pixels; 0 disables blurring"),
        "transform": Field(str, "scale", choices=("none", "scale", "affine")),
    },
    doc="Learnable Gaussian blur and grid_sample resampling onto a common grid.",
)
def build_grid_adapter(params: dict, ctx: BuildContext) -> tuple[nn.Module | None, int]:
    return GridAdapter(
        params["grid_size"], params["init_sigma"], params["transform"]
    ), ctx.in_channels
