"""Pooling stages of a conv block (``pool_params.type``), all on ``(B, C, T, H, W)``."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

SOFTPOOL_TEMPERATURE = 10.0  # exp(x / 10) stays finite for activations up to ~800


def softpool2d(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """SoftPool: the ``exp(x/T)``-weighted mean of each window."""
    w = torch.exp(x / SOFTPOOL_TEMPERATURE)
    return F.avg_pool2d(x * w, kernel, stride) / (F.avg_pool2d(w, kernel, stride) + 1e-6)


def _squeeze_excite(channels: int, r: int) -> nn.Sequential:
    return nn.Sequential(
        nn.AdaptiveAvgPool3d((None, 1, 1)),
        nn.Conv3d(channels, channels // r, 1),
        nn.SiLU(),
        nn.Conv3d(channels // r, channels, 1),
        nn.Sigmoid(),
    )


class SESoftPool(nn.Module):
    """2x2 SoftPool (or average) per frame with ``stride``, then a squeeze-excite gate.

    ``blur`` adds the fixed 3x3 binomial low-pass before pooling (VisionCore's ``aablur``).
    """

    def __init__(self, channels: int, stride: int = 2, r: int = 8, use_soft: bool = True,
                 blur: bool = True):  # fmt: skip
        super().__init__()
        if blur:
            k = torch.tensor([1.0, 2.0, 1.0])
            self.register_buffer("blur", (k[:, None] * k[None, :]).div(16)[None, None])
        self.has_blur = blur
        self.stride, self.use_soft = stride, use_soft
        self.se = _squeeze_excite(channels, r)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        y = x.transpose(1, 2).reshape(b * t * c, 1, h, w)
        if self.has_blur:
            y = F.conv2d(y, self.blur, padding=1)
        y = softpool2d(y, 2, self.stride) if self.use_soft else F.avg_pool2d(y, 2, self.stride)
        y = y.view(b, t, c, *y.shape[-2:]).transpose(1, 2)
        return y * self.se(y)


class LocalChannelSpatialAttn(nn.Module):
    """Sigmoid gates from a grouped conv across channels and a depthwise conv per frame."""

    def __init__(self, channels: int, chan_window: int = 3, spatial_kernel: int = 3):
        super().__init__()
        self.chan_conv1d = nn.Conv1d(
            channels, channels, chan_window, padding=chan_window // 2,
            groups=channels // chan_window,
        )  # fmt: skip
        self.spatial_conv2d = nn.Conv2d(
            channels, channels, spatial_kernel, padding=spatial_kernel // 2, groups=channels
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        g_ch = self.chan_conv1d(x.permute(0, 2, 3, 4, 1).reshape(-1, c, 1))
        g_ch = g_ch.reshape(b, t, h, w, c).permute(0, 4, 1, 2, 3).sigmoid()
        # VisionCore folds (B, C, T, H, W) memory straight into frames; kept for equality.
        g_sp = self.spatial_conv2d(x.reshape(-1, c, h, w)).sigmoid()
        g_sp = g_sp.reshape(b, t, c, h, w).permute(0, 2, 1, 3, 4)
        return x * g_ch * g_sp


def _spatial_kernel(value: Any, dim: int) -> Any:
    """A 2-D block's pool acts per frame: ``k`` -> ``(1, k, k)`` (README)."""
    if dim == 3 or value is None:
        return value
    if isinstance(value, int):
        return (1, value, value)
    return (1, *value) if len(value) == 2 else tuple(value)


def make_pool(params: dict[str, Any] | None, channels: int, dim: int) -> nn.Module:
    """The pool of a block whose conv outputs ``channels``; ``dim`` 2 means kT == 1."""
    kind = (params or {}).get("type", "none") or "none"
    if kind == "none":
        return nn.Identity()
    stride = params.get("stride")
    if kind in ("aablur", "se_pool"):
        return SESoftPool(channels, 2 if stride is None else stride, params.get("r", 8),
                          params.get("use_soft", True), blur=kind == "aablur")  # fmt: skip
    if kind == "locatt":
        return LocalChannelSpatialAttn(
            channels, params.get("chan_window", 3), params.get("spatial_kernel", 3)
        )
    kernel = _spatial_kernel(params["kernel_size"], dim)
    if kind.startswith("adaptive"):
        cls = nn.AdaptiveMaxPool3d if kind == "adaptivemax" else nn.AdaptiveAvgPool3d
        return cls(kernel)
    cls = nn.MaxPool3d if kind == "max" else nn.AvgPool3d
    stride = kernel if stride is None else _spatial_kernel(stride, dim)
    padding = params.get("padding", 0) or 0
    if dim == 2:
        padding = (0, padding, padding) if isinstance(padding, int) else (0, *padding[-2:])
    return cls(kernel, stride, padding)
