"""Frontends: the first, shared stage after the per-session adapter.

- ``learnable_temporal``: one learned temporal filter bank, valid in time (T -> T - k + 1).
- ``da``: Clark et al. (2013) dynamic adaptation of photoreceptors, causal in time.
- ``temporal_basis``: a fixed raised-cosine basis applied causally to each pixel.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trainer.models.layers.conv import StandardConv, set_effective_weight

BINOM5 = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16 * math.sqrt(2)


def _blur_kernel(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.outer(BINOM5, BINOM5).to(device=device, dtype=dtype)[None, None]


def blur_downsample(x: torch.Tensor) -> torch.Tensor:
    """Binomial-5 blur (reflect padding), then keep every other pixel (plenoptic's)."""
    c = x.shape[1]
    padded = F.pad(x, (2, 2, 2, 2), mode="reflect")
    return F.conv2d(padded, _blur_kernel(x.dtype, x.device).expand(c, 1, 5, 5), stride=2, groups=c)


def upsample_blur(x: torch.Tensor, odd: tuple[int, int]) -> torch.Tensor:
    """Zero-insertion upsampling by 2 to the size ``2 * x - odd``, then the binomial blur."""
    c = x.shape[1]
    kernel = _blur_kernel(x.dtype, x.device).flip((2, 3)).expand(c, 1, 5, 5)
    start = np.array([2, 2])
    end = np.array([5, 5]) - np.array(odd) - start
    pad = np.array([start[1], end[1], start[0], end[0]])
    x = F.pad(x, tuple(int(p) for p in pad // 2), mode="reflect")
    ones = torch.ones(c, 1, 1, 1, dtype=x.dtype, device=x.device)
    x = F.conv_transpose2d(x, ones, stride=2, groups=c)
    x = F.pad(x, tuple(int(p) for p in pad % 2))
    return F.conv2d(x, kernel, groups=c)


def gamma_kernel(t: torch.Tensor, tau: float, n: int = 2) -> torch.Tensor:
    t = t.clamp_min(0.0)
    return (t ** (n - 1)) * torch.exp(-t / tau) / (tau**n * math.gamma(n))


def initial_kernels(init_type: str, size: int, channels: int) -> torch.Tensor | None:
    """``(channels, size)`` starting temporal kernels (``None``: keep the random init)."""
    if init_type == "random":
        return None
    if init_type == "identity":
        kernels = torch.zeros(channels, size)
        kernels[torch.arange(channels), torch.arange(channels).clamp_max(size - 1)] = 1.0
        return kernels
    if init_type == "biphasic":
        t = torch.arange(size) / 120
        k = gamma_kernel(t, 0.008) - 0.9 * gamma_kernel(t, 0.022)
        k = k - k.mean()
        return (k / k.clamp_min(0).sum().clamp_min(1e-12)).repeat(channels, 1)
    t = torch.linspace(-(size - 1) / 2, (size - 1) / 2, size)
    sigma = size / 6.0
    envelope = torch.exp(-0.5 * (t / sigma) ** 2)
    rows = []
    for i in range(channels):
        if i == 0:
            k = envelope
        elif i == 1:
            k = -t / sigma**2 * envelope
        elif i == 2:
            k = (t**2 / sigma**2 - 1) / sigma**2 * envelope
        else:
            k = torch.randn(size) * envelope
        rows.append(k / torch.linalg.vector_norm(k))
    return torch.stack(rows)


class LearnableTemporalConv(nn.Module):
    """``(B, 1, T, H, W) -> (B, num_channels, T - k + 1, H, W)`` by a ``(k, 1, 1)`` conv.

    ``split_MP`` first splits each frame into a low-pass (magno) and a residual (parvo)
    image and filters each with half of the channels.
    """

    def __init__(self, kernel_size: int, num_channels: int, init_type: str, causal: bool,
                 split_MP: bool, bias: bool, **conv: Any):  # fmt: skip
        super().__init__()
        self.kernel_size, self.num_channels = kernel_size, num_channels
        self.split_MP, self.causal = split_MP, causal
        self.temporal_conv = StandardConv(
            2 if split_MP else 1, num_channels, (kernel_size, 1, 1), bias=bias,
            groups=2 if split_MP else 1, padding=0, **conv,
        )  # fmt: skip
        kernels = initial_kernels(init_type, kernel_size, num_channels)
        if kernels is not None:
            weight = self.temporal_conv.weight.detach().clone()
            weight[:, 0, :, 0, 0] = kernels
            set_effective_weight(self.temporal_conv.conv, weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[2] < self.kernel_size:
            raise ValueError(f"{x.shape[2]} frames < temporal kernel_size {self.kernel_size}")
        if self.split_MP:
            b, c, t, h, w = x.shape
            frames = x.transpose(1, 2).reshape(b * t, c, h, w)
            low = upsample_blur(blur_downsample(frames), (h % 2, w % 2))
            both = torch.cat([frames - low, low], dim=1)
            x = both.view(b, t, 2 * c, h, w).transpose(1, 2)
        return self.temporal_conv(x)


class DAModel(nn.Module):
    """Clark et al. (2013) DA model with tau_r ~ 0: ``r = alpha * y / (1 + beta * z)``.

    ``y = K_y * s`` and ``z = K_z * s`` are causal gamma-kernel filters of each pixel's
    time course (``K_z`` mixes the fast and a slow kernel by ``gamma``).
    """

    def __init__(self, sampling_rate: float = 240, alpha: float = 1.0, beta: float = 8e-5,
                 gamma: float = 0.5, tau_y_ms: float = 5.0, tau_z_ms: float = 60.0,
                 n_y: float = 5.0, n_z: float = 2.0, filter_length: int = 200,
                 learnable_params: bool = False, **_: Any):  # fmt: skip
        super().__init__()
        self.filter_length, self.dt = filter_length, 1.0 / float(sampling_rate)
        self.learnable_params = learnable_params
        for name, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma),
                            ("tau_y_ms", tau_y_ms), ("n_y", n_y), ("tau_z_ms", tau_z_ms),
                            ("n_z", n_z)):  # fmt: skip
            setattr(self, name, nn.Parameter(torch.tensor(float(value)), learnable_params))
        if not learnable_params:
            ky, kz = self.filters()
            self.register_buffer("Ky_filter", ky.detach())
            self.register_buffer("Kz_filter", kz.detach())

    def filters(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Time-reversed ``(1, 1, L)`` kernels K_y and K_z."""
        tau_y = (self.tau_y_ms.clamp_min(1e-2) / 1000.0 / self.dt).clamp_min(0.1)
        tau_z = (self.tau_z_ms.clamp_min(1e-2) / 1000.0 / self.dt).clamp_min(0.1)
        n_y, n_z = self.n_y.clamp_min(0.5), self.n_z.clamp_min(0.1)
        t = torch.arange(float(self.filter_length), device=tau_y.device)

        def kernel(tau: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
            norm = (tau ** (n + 1.0) * torch.exp(torch.lgamma(n + 1.0 + 1e-9))).clamp_min(1e-9)
            return torch.pow(t, n) * torch.exp(-t / tau) / norm

        ky = kernel(tau_y, n_y)
        g = self.gamma.clamp(0.0, 1.0)
        kz = g * ky + (1.0 - g) * kernel(tau_z, n_z)
        return ky.flip(0)[None, None], kz.flip(0)[None, None]

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        if s.dim() == 4:
            s = s.unsqueeze(1)
        if s.shape[1] != 1:
            raise ValueError(f"the da frontend takes 1 channel, got {s.shape[1]}")
        ky, kz = self.filters() if self.learnable_params else (self.Ky_filter, self.Kz_filter)
        padded = F.pad(s, (0, 0, 0, 0, self.filter_length - 1, 0))
        kernels = torch.cat([ky, kz]).to(s.dtype).view(2, 1, -1, 1, 1)
        yz = F.conv3d(padded, kernels)
        y, z = yz[:, :1], yz[:, 1:]
        return self.alpha * y / (1.0 + F.relu(self.beta) * z).clamp_min(1e-6)


def raised_cosine_basis(num_delta: int, num_cosine: int, history_bins: int, log_spacing: bool,
                        peak_range_ms: list[float], bin_size_ms: float, normalize: bool,
                        ) -> torch.Tensor:  # fmt: skip
    """``(num_delta + num_cosine, 1, history_bins + 1)`` basis, first tap zero (causal)."""
    size = max(1, int(history_bins))
    basis = torch.zeros(num_delta + num_cosine, 1, size)
    for i in range(min(num_delta, size)):
        basis[i, 0, i] = 1.0
    if num_cosine > 0:
        t = torch.arange(size, dtype=torch.float32) * bin_size_ms
        lo, hi = peak_range_ms
        if log_spacing:
            lo_l, hi_l = np.log(max(1e-2, lo)), np.log(max(1e-2, hi))
            centers = (torch.tensor([lo_l + (hi_l - lo_l) / 2]) if num_cosine == 1
                       else torch.linspace(lo_l, hi_l, num_cosine))  # fmt: skip
            width = ((hi_l - lo_l) if hi_l > lo_l else np.log(hi if hi > 0 else 1.0)) \
                if num_cosine == 1 else (centers[1] - centers[0]) * 2.0  # fmt: skip
            args = [(torch.log(t + 1e-6) - c) * np.pi / width for c in centers]
        else:
            centers = (torch.tensor([lo + (hi - lo) / 2]) if num_cosine == 1
                       else torch.linspace(lo, hi, num_cosine))  # fmt: skip
            width = (
                ((hi - lo) if hi > lo else hi)
                if num_cosine == 1
                else (centers[1] - centers[0]) * 2.0
            )
            args = [(t - c) * np.pi / width for c in centers]
        for i, arg in enumerate(args):
            value = (torch.cos(arg) + 1) / 2.0
            value[arg.abs() > np.pi] = 0.0
            basis[num_delta + i, 0] = value
    basis = F.pad(basis, (1, 0))
    return F.normalize(basis, p=2, dim=2) if normalize else basis


class TemporalBasis(nn.Module):
    """Each pixel's time course projected on a fixed basis: C -> C * n_basis channels."""

    def __init__(self, num_delta_funcs: int, num_cosine_funcs: int, history_bins: int,
                 log_spacing: bool, peak_range_ms: list[float], bin_size_ms: float,
                 normalize: bool, orthogonalize: bool, causal: bool, batch_norm: bool,
                 chomp: int | None, **_: Any):  # fmt: skip
        super().__init__()
        if orthogonalize:
            raise ValueError("temporal_basis: orthogonalize is untested upstream; not offered")
        basis = raised_cosine_basis(num_delta_funcs, num_cosine_funcs, history_bins,
                                    log_spacing, peak_range_ms, bin_size_ms, normalize)  # fmt: skip
        self.num_basis = num_delta_funcs + num_cosine_funcs
        self.causal, self.chomp = causal, chomp
        self.register_buffer("basis", basis.flip(2))
        length = basis.shape[2]
        self.padding = (length - 1, 0) if causal else (length // 2, length - 1 - length // 2)
        self.bn = nn.BatchNorm1d(self.num_basis) if batch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        series = x.permute(0, 1, 3, 4, 2).reshape(-1, 1, t)
        basis = self.basis if self.causal else self.basis.flip(2)
        y = F.conv1d(F.pad(series, self.padding), basis)
        if self.bn is not None:
            y = self.bn(y)
        y = y.reshape(b, c, h, w, self.num_basis, t).permute(0, 1, 4, 5, 2, 3)
        y = y.reshape(b, c * self.num_basis, t, h, w)
        return y[:, :, self.chomp :] if self.chomp else y
