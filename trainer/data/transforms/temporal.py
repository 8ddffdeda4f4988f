"""Ops that filter over time (and space): ``smooth``, ``dacones``, ``fftwhitening``.

They run over the whole array of one recording as VisionCore's do (across trial
boundaries), after sampling; the per-op docstrings give the formulas.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from trainer.data.transforms.registry import OpContext, Transform, op_error, transform_op


def gaussian_kernel(sigma: float) -> np.ndarray:
    """Odd-length Gaussian, ``int(6 sigma) + 1`` taps (made odd), summing to 1."""
    size = int(6 * sigma) + 1
    size += 1 - size % 2
    offsets = np.arange(size, dtype=np.float64) - size // 2
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    return kernel / kernel.sum()


def _conv_time(series: torch.Tensor, kernel: np.ndarray, pad: tuple[int, int], mode: str):
    """Cross-correlate every (channel, 1, T) row with ``kernel`` after padding time."""
    weight = torch.from_numpy(np.ascontiguousarray(kernel, dtype=np.float32)).view(1, 1, -1)
    with torch.no_grad():
        return F.conv1d(F.pad(series, pad, mode=mode), weight)


def _as_rows(x: np.ndarray) -> torch.Tensor:
    """(T, ...) float32 -> (features, 1, T) for a per-feature temporal convolution."""
    flat = np.ascontiguousarray(x, dtype=np.float32).reshape(x.shape[0], -1)
    return torch.from_numpy(flat).T.unsqueeze(1)


def _from_rows(rows: torch.Tensor, shape: tuple[int, ...]) -> np.ndarray:
    return rows.squeeze(1).T.reshape(shape).numpy()


@transform_op("smooth")
def smooth(params: dict[str, Any], where: str) -> Transform:
    """Gaussian smoothing over time, sigma = ``params`` bins; edges reflected (no repeat of
    the edge bin, scipy's "mirror"); the dtype is kept. sigma 0 leaves the data as is."""
    sigma = params["params"]

    def apply(x: np.ndarray, ctx: OpContext) -> np.ndarray:
        if sigma <= 0:
            return x.copy()
        kernel = gaussian_kernel(sigma)
        half = kernel.size // 2
        if x.shape[0] <= half:
            raise op_error(
                where, f"sigma {sigma} needs more than {half} bins to reflect, got {x.shape[0]}"
            )
        rows = _conv_time(_as_rows(x), kernel, (half, half), "reflect")
        return _from_rows(rows, x.shape).astype(x.dtype, copy=False)

    return apply


def cone_filters(params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(Ky, Kz) over lags 0..filter_length-1: gamma-shaped kernels of unit area.

    ``K(t) = t^n exp(-t / tau) / (tau^(n+1) Gamma(n+1))`` with tau in bins of
    ``1 / sampling_rate``; ``Kz = gamma Ky + (1 - gamma) K_slow``. Clamps are VisionCore's.
    """
    dt = 1.0 / params["sampling_rate"]
    t = np.arange(params["filter_length"], dtype=np.float64)

    def kernel(tau_ms: float, n: float) -> np.ndarray:
        tau = max(max(tau_ms, 1e-2) / 1000.0 / dt, 0.1)
        norm = max(tau ** (n + 1.0) * math.exp(math.lgamma(n + 1.0 + 1e-9)), 1e-9)
        return t**n * np.exp(-t / tau) / norm

    k_y = kernel(params["tau_y_ms"], max(params["n_y"], 0.5))
    k_slow = kernel(params["tau_z_ms"], max(params["n_z"], 0.1))
    gamma = min(max(params["gamma"], 0.0), 1.0)
    return k_y, gamma * k_y + (1.0 - gamma) * k_slow


@transform_op("dacones")
def dacones(params: dict[str, Any], where: str) -> Transform:
    """Clark et al. (2013) dynamical adaptation per pixel, (T, H, W) -> (T, 1, H, W).

    ``y = Ky * x``, ``z = Kz * x`` (causal, zero before the start) and ``r = alpha y /
    max(1 + relu(beta) z, 1e-6)``. ``sampling_rate`` (default 240, as in VisionCore) sets
    the filters' time step, not the data's rate: set it to the target rate to make the
    time constants mean milliseconds of the resampled data. (VisionCore's branch for uint8
    input never runs: its pipeline, like ours, hands ops float32.)
    """
    k_y, k_z = cone_filters(params)
    alpha, beta = params["alpha"], max(params["beta"], 0.0)
    length = params["filter_length"]

    def apply(x: np.ndarray, ctx: OpContext) -> np.ndarray:
        if x.ndim != 3:
            raise op_error(where, f"expects stim (T, H, W), got shape {x.shape}")
        rows = _as_rows(x)
        y = _conv_time(rows, k_y[::-1], (length - 1, 0), "constant")
        z = _conv_time(rows, k_z[::-1], (length - 1, 0), "constant")
        r = np.float32(alpha) * y / torch.clamp(1.0 + np.float32(beta) * z, min=1e-6)
        return np.expand_dims(_from_rows(r, x.shape), 1)

    return apply


@transform_op("fftwhitening")
def fftwhitening(params: dict[str, Any], where: str) -> Transform:
    """Multiply the 3-D spectrum over (time, height, width) by ``f exp(-(f / f_0)^n)``,
    ``f`` the radial frequency in cycles per sample; (T, H, W) or (T, 1, H, W), float32."""
    f_0, n = params["f_0"], params["n"]

    def apply(x: np.ndarray, ctx: OpContext) -> np.ndarray:
        if x.ndim == 4 and x.shape[1] == 1:
            return apply(x[:, 0], ctx)[:, None]
        if x.ndim != 3:
            raise op_error(where, f"expects (T, H, W) or (T, 1, H, W), got shape {x.shape}")
        steps, height, width = x.shape
        f_t, f_h = np.fft.fftfreq(steps), np.fft.fftfreq(height)
        f_w = np.fft.rfftfreq(width)  # the filter is even in f: the half spectrum suffices
        radial = np.sqrt(f_t[:, None, None] ** 2 + f_h[None, :, None] ** 2 + f_w**2)
        gain = (radial * np.exp(-((radial / f_0) ** n))).astype(np.float32)
        spectrum = np.fft.rfftn(x.astype(np.float32, copy=False), axes=(0, 1, 2))
        spectrum *= gain
        return np.fft.irfftn(spectrum, s=x.shape, axes=(0, 1, 2)).astype(np.float32)

    return apply
