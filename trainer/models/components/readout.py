"""Per-session readouts: core features -> one value per unit, from the last time step."""

from __future__ import annotations

import torch
from torch import nn


class DynamicGaussianReadout(nn.Module):
    """``sum_hw features(x)[u] * mask_u + bias``: a 1x1 feature map per unit, pooled by a
    rotated 2-D Gaussian (``mean``, ``std``, angle ``theta``) normalised to sum 1.

    Coordinates are pixels from the feature map's centre, ``(y, x)`` order.
    """

    no_weight_decay = ("mean", "std", "theta")  # positions and widths, not weights

    def __init__(self, in_channels: int, n_units: int, bias: bool = True,
                 initial_std: float = 5.0, initial_mean_scale: float = 0.0):  # fmt: skip
        super().__init__()
        self.in_channels, self.n_units = in_channels, n_units
        self.features = nn.Conv2d(in_channels, n_units, 1, bias=False)
        self.bias = nn.Parameter(torch.zeros(n_units)) if bias else None
        self.mean = nn.Parameter(initial_mean_scale * torch.randn(n_units, 2))
        self.std = nn.Parameter(torch.ones(n_units, 2) * initial_std)
        self.theta = nn.Parameter(torch.zeros(n_units))

    def gaussian_mask(self, height: int, width: int) -> torch.Tensor:
        """``(n_units, H, W)`` masks, each summing to 1.

        VisionCore's formula (offsets from the mean rotated by ``[[cos, -sin], [sin, cos]]``,
        scaled by ``std``) written out per axis: a few elementwise ops instead of grids,
        stacks and an einsum over tiny tensors, which cost more than the arithmetic.
        """
        device = self.mean.device
        ys = torch.linspace(-(height - 1) / 2.0, (height - 1) / 2.0, height, device=device)
        xs = torch.linspace(-(width - 1) / 2.0, (width - 1) / 2.0, width, device=device)
        dy = ys.view(1, height, 1) - self.mean[:, 0].view(-1, 1, 1)
        dx = xs.view(1, 1, width) - self.mean[:, 1].view(-1, 1, 1)
        cos = torch.cos(self.theta).view(-1, 1, 1)
        sin = torch.sin(self.theta).view(-1, 1, 1)
        std = self.std.clamp(min=1e-3)
        along = (dy * cos + dx * sin) / std[:, 0].view(-1, 1, 1)
        across = (dx * cos - dy * sin) / std[:, 1].view(-1, 1, 1)
        mask = torch.exp(-0.5 * (along * along + across * across))
        return mask / (mask.sum(dim=(-1, -2), keepdim=True) + 1e-8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``sum_c w[u, c] * sum_hw x[c] * mask_u``: each unit's mask pools the map first
        (one matmul), then its feature weights apply. VisionCore applies the weights first
        (a 1x1 conv over the whole map, then the masked sum): the same sum in another
        order, about half the CPU time of a training step's readout."""
        if x.dim() == 5:
            x = x[:, :, -1]
        b, c, h, w = x.shape
        mask = self.gaussian_mask(h, w).to(x.dtype).reshape(self.n_units, h * w)
        pooled = torch.matmul(x.reshape(b, c, h * w), mask.t())  # (B, C, units)
        weight = self.features.weight.view(self.n_units, c).to(x.dtype)
        out = (pooled * weight.t()).sum(dim=1)
        return out + self.bias if self.bias is not None else out


class FlattenedLinearReadout(nn.Module):
    """Last time step, spatial average (unless already 1x1), then a linear layer."""

    def __init__(self, in_channels: int, n_units: int, bias: bool = True):
        super().__init__()
        self.in_channels, self.n_units = in_channels, n_units
        self.adaptive_pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(in_channels, n_units, bias=bias)
        # VisionCore also registers the fc bias as ``bias`` (two state-dict keys, one tensor).
        self.bias = self.fc.bias if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 5:
            x = x[:, :, -1]
        if x.shape[-2:] != (1, 1):
            x = self.adaptive_pool(x)
        return self.fc(torch.flatten(x, 1))


def build_readout(kind: str, params: dict, in_channels: int, n_units: int) -> nn.Module:
    if kind == "gaussian":
        std, scale = params["initial_std"], params["initial_mean_scale"]
        return DynamicGaussianReadout(in_channels, n_units, params["bias"], std, scale)
    return FlattenedLinearReadout(in_channels, n_units, params["bias"])
