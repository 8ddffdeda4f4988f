"""Raised-cosine temporal bases and the ``temporal_basis`` op (VisionCore's TemporalBasis).

The basis (``raised_cosine_basis``) is a (K, L) matrix whose row b weights lag/offset j of
the signal. Row 0..D-1 are deltas, then raised cosines ``(1 + cos(arg)) / 2`` for
``|arg| <= pi``, with ``arg = (t - c) pi / w`` on the kernel's time axis ``t = j *
bin_size_ms`` (or on ``log t`` with log spacing), peaks ``c`` evenly spread over
``peak_range_ms`` and width ``w`` twice the peak spacing. A zero column is put in front
(so a causal basis never sees the current bin) and each row is scaled to unit L2 norm.
VisionCore measures the kernel in ``bin_size_ms`` units (5 by default) whatever the data
rate: so do we, so its configs mean the same here.

The op convolves every channel (or pixel) over time with each row:
causal ``y[t] = sum_j B[j] x[t - j]`` (the past only); acausal ``y[t] = sum_j B[j] x[t + j
- L // 2]`` (a window centred on t). Bins outside the array count as 0.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from trainer.data.transforms.registry import OpContext, Transform, op_error, transform_op

BATCH_NORM_EPS = 1e-5  # torch BatchNorm1d's


def raised_cosine_basis(
    num_delta_funcs: int,
    num_cosine_funcs: int,
    history_bins: int,
    log_spacing: bool = True,
    peak_range_ms: tuple[float, float] | list[float] = (5, 100),
    bin_size_ms: float = 5.0,
    normalize: bool = True,
    orthogonalize: bool = False,
) -> np.ndarray:
    """The (num_delta_funcs + num_cosine_funcs, max(1, history_bins) + 1) basis, float64."""
    length = max(1, int(history_bins))
    basis = np.zeros((num_delta_funcs + num_cosine_funcs, length))
    for i in range(min(num_delta_funcs, length)):
        basis[i, i] = 1.0
    if num_cosine_funcs > 0:
        t = np.arange(length, dtype=np.float64) * bin_size_ms
        centres, width = _peaks(num_cosine_funcs, log_spacing, peak_range_ms)
        for i, centre in enumerate(centres):
            if log_spacing:
                arg = (np.log(t + 1e-6) - math.log(max(centre, 1e-6))) * math.pi / width
            else:
                arg = (t - centre) * math.pi / width
            row = (np.cos(arg) + 1.0) / 2.0
            row[np.abs(arg) > math.pi] = 0.0
            basis[num_delta_funcs + i] = row
    basis = np.pad(basis, ((0, 0), (1, 0)))  # lag 0 gets no weight
    if normalize:
        basis = basis / np.maximum(np.linalg.norm(basis, axis=1, keepdims=True), 1e-12)
    if orthogonalize:
        basis = _gram_schmidt(basis)
    return basis


def _peaks(n: int, log_spacing: bool, peak_range_ms: Any) -> tuple[np.ndarray, float]:
    """Peak positions (ms) and the cosine width: in log-ms with log spacing, else ms."""
    first, last = float(peak_range_ms[0]), float(peak_range_ms[1])
    if log_spacing:
        low, high = math.log(max(1e-2, first)), math.log(max(1e-2, last))
        logs = np.array([low + (high - low) / 2]) if n == 1 else np.linspace(low, high, n)
        if n == 1:
            width = (high - low) if high > low else math.log(last if last > 0 else 1.0)
        else:
            width = (logs[1] - logs[0]) * 2.0
        return np.exp(logs), float(width)
    if n == 1:
        return np.array([first + (last - first) / 2]), float(last - first if last > first else last)
    centres = np.linspace(first, last, n)
    return centres, float((centres[1] - centres[0]) * 2.0)


def _gram_schmidt(basis: np.ndarray) -> np.ndarray:
    """Rows made orthonormal in order (VisionCore's ``orthogonalize``)."""
    out = np.zeros_like(basis)
    for i, row in enumerate(basis):
        vector = row.copy()
        for j in range(i):
            norm2 = out[j] @ out[j]
            if norm2 > 0:
                vector -= (out[j] @ row) / norm2 * out[j]
        out[i] = vector / max(np.linalg.norm(vector), 1e-12)
    return out


def convolve_basis(x: np.ndarray, basis: np.ndarray, causal: bool) -> np.ndarray:
    """(T, C) -> (T, C * K) channel-major, or (T, H, W) -> (T, K, H, W)."""
    steps = x.shape[0]
    series = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    series = series.reshape(steps, -1).T.unsqueeze(1)  # (channels, 1, T)
    length = basis.shape[1]
    if causal:  # weight index k multiplies x[t + k - (L - 1)]: lag L - 1 - k
        weight, pad = basis[:, ::-1], (length - 1, 0)
    else:  # weight index k multiplies x[t + k - L // 2]
        weight, pad = basis, (length // 2, length - 1 - length // 2)
    kernel = torch.from_numpy(np.ascontiguousarray(weight, dtype=np.float32)).unsqueeze(1)
    with torch.no_grad():
        y = F.conv1d(F.pad(series, pad), kernel)  # (channels, K, T)
    y = y.permute(2, 0, 1)  # (T, channels, K)
    if x.ndim == 2:
        return y.reshape(steps, -1).numpy()
    return y.permute(0, 2, 1).reshape(steps, basis.shape[0], *x.shape[1:]).numpy()


def standardise_per_basis(y: np.ndarray, x_ndim: int, n_basis: int) -> np.ndarray:
    """Training-mode BatchNorm1d over the basis channel: zero mean, unit (biased) variance."""
    if x_ndim == 2:  # (T, C*K): basis b is every K-th column from b
        view = y.reshape(y.shape[0], -1, n_basis)
        axes: tuple[int, ...] = (0, 1)
    else:  # (T, K, H, W)
        view = y
        axes = (0, 2, 3)
    mean = view.mean(axis=axes, keepdims=True, dtype=np.float64)
    var = view.var(axis=axes, keepdims=True, dtype=np.float64)
    out = (view - mean) / np.sqrt(var + BATCH_NORM_EPS)
    return out.astype(np.float32).reshape(y.shape)


@transform_op("temporal_basis")
def temporal_basis(params: dict[str, Any], where: str) -> Transform:
    """Project each channel's time course onto the basis (see the module docstring)."""
    basis = raised_cosine_basis(
        params["num_delta_funcs"],
        params["num_cosine_funcs"],
        params["history_bins"],
        params["log_spacing"],
        params["peak_range_ms"],
        params["bin_size_ms"],
        params["normalize"],
        params["orthogonalize"],
    )

    def apply(x: np.ndarray, ctx: OpContext) -> np.ndarray:
        if x.ndim not in (2, 3):
            raise op_error(where, f"expects (T, C) or (T, H, W), got shape {x.shape}")
        y = convolve_basis(x, basis, params["causal"])
        if params["batch_norm"]:
            y = standardise_per_basis(y, x.ndim, basis.shape[0])
        return y

    return apply
