"""The per-session adapter: a learned blur, then resampling onto a ``grid_size`` grid.

Sessions recorded at different resolutions meet the shared core on one pixel grid. The
blur's sigma combines a learned part and the minimum an anti-aliased downscale needs;
unlike VisionCore's (which builds the kernel from ``sigma.item()``) the kernel here is
differentiable in sigma, so ``log_sigma`` and the scale learn through it (README).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class AffineAdapter(nn.Module):
    """``(B, C, T, H, W) -> (B, C, T, g, g)``: blur, then ``grid_sample`` on a scaled grid."""

    no_weight_decay = ("affine",)  # a transform: decayed, it would shrink the grid to a point

    def __init__(self, init_sigma: float = 1.0, grid_size: int = 25, transform: str = "scale"):
        super().__init__()
        self.grid_size, self.transform = grid_size, transform
        self.log_sigma = nn.Parameter(torch.log(torch.expm1(torch.tensor(float(init_sigma)))))
        if transform == "scale":
            self.log_scale = nn.Parameter(torch.zeros(2))
        else:
            self.affine = nn.Parameter(torch.eye(2, 3))
        lin = torch.linspace(-1.0, 1.0, grid_size)
        gy, gx = torch.meshgrid(lin, lin, indexing="ij")
        self.register_buffer("base_grid", torch.stack((gx, gy), -1), persistent=False)

    def _min_scale(self) -> torch.Tensor:
        if self.transform == "scale":
            return F.softplus(self.log_scale).min()
        return torch.linalg.svdvals(self.affine[:, :2]).min()

    def sigma(self) -> torch.Tensor:
        """Total blur: learned sigma combined with the anti-aliasing minimum."""
        s_min = self._min_scale()
        alias = torch.where(s_min >= 1.0, torch.zeros_like(s_min), 0.44 * (1.0 / s_min - 1.0))
        return torch.sqrt(alias**2 + F.softplus(self.log_sigma) ** 2)

    def _blur(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        if float(sigma.detach()) < 1e-3:
            return x
        k = round(float(sigma.detach()) * 6) | 1
        # VisionCore's taps: arange(-k // 2, k // 2 + 1) has k + 1 taps for odd k.
        taps = torch.arange((-k) // 2, k // 2 + 1, device=x.device, dtype=x.dtype)
        g = torch.exp(-0.5 * (taps / sigma.to(x.dtype)) ** 2)
        g = g / g.sum()
        c = x.shape[1]
        x = F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), padding=(k // 2, 0), groups=c)
        return F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), padding=(0, k // 2), groups=c)

    def _grid(self, batch: int, dtype: torch.dtype) -> torch.Tensor:
        if self.transform == "scale":
            grid = self.base_grid * F.softplus(self.log_scale)
            return grid.to(dtype).unsqueeze(0).expand(batch, -1, -1, -1)
        theta = self.affine.to(dtype).unsqueeze(0).expand(batch, -1, -1)
        return F.affine_grid(theta, [batch, 1, self.grid_size, self.grid_size], align_corners=True)

    def forward(self, x: torch.Tensor | None) -> torch.Tensor | None:
        if x is None:
            return None
        b, c, t, h, w = x.shape
        frames = x.reshape(b * c, t, h, w)
        frames = self._blur(frames, self.sigma())
        out = F.grid_sample(frames, self._grid(b * c, frames.dtype), mode="bilinear",
                            align_corners=True, padding_mode="zeros")  # fmt: skip
        return out.view(b, c, t, self.grid_size, self.grid_size)
