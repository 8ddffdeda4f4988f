"""Ops that act on each bin (or each value) on its own, plus ``diff`` and ``maxnorm``.

Each computes what VisionCore's op of the same name computes on the float32 array its
pipeline hands it (``models/data/transforms.py``); where VisionCore would produce NaN or a
cryptic torch error we say so in the docstring and do the sensible thing or raise.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trainer.data.transforms.registry import OpContext, Transform, op_error, transform_op


@transform_op("pixelnorm")
def pixelnorm(params: dict[str, Any], where: str) -> Transform:
    """Pixels 0..255 to about [-0.5, 0.5]: ``(x - 127) / 255`` in float32."""

    def apply(x: np.ndarray, ctx: OpContext) -> np.ndarray:
        out = x.astype(np.float32)  # a new array: the in-place steps below never touch x
        out -= np.float32(127)
        out /= np.float32(255)
        return out

    return apply


@transform_op("mul")
def mul(params: dict[str, Any], where: str) -> Transform:
    """``x * factor`` (``mul: 240`` turns a per-bin difference into a per-second one)."""
    factor = params["factor"]

    def apply(x: np.ndarray, ctx: OpContext) -> np.ndarray:
        return x * np.asarray(factor, dtype=x.dtype if x.dtype.kind == "f" else np.float32)

    return apply


@transform_op("diff")
def diff(params: dict[str, Any], where: str) -> Transform:
    """Backward difference along ``axis``, same length: the first slice's difference is 0."""
    axis = params["axis"]

    def apply(x: np.ndarray, ctx: OpContext) -> np.ndarray:
        _check_axis(x, axis, where, "axis")
        first = np.take(x, [0], axis=axis)
        return np.diff(x, axis=axis, prepend=first)

    return apply


@transform_op("symlog")
def symlog(params: dict[str, Any], where: str) -> Transform:
    """``sign(x) log(1 + |x|)``: compresses large values, keeps sign and small ones."""

    def apply(x: np.ndarray, ctx: OpContext) -> np.ndarray:
        return np.sign(x) * np.log1p(np.abs(x))

    return apply


@transform_op("maxnorm")
def maxnorm(params: dict[str, Any], where: str) -> Transform:
    """``x / max|x|`` over the whole array (all channels share one scale).

    An all-zero array is returned unchanged (VisionCore divides 0 by 0 and gets NaN).
    """

    def apply(x: np.ndarray, ctx: OpContext) -> np.ndarray:
        peak = np.max(np.abs(x)) if x.size else 0
        return x / peak if peak > 0 else x.copy()

    return apply


@transform_op("unsqueeze")
def unsqueeze(params: dict[str, Any], where: str) -> Transform:
    """A new axis of size 1 at ``axis`` (``unsqueeze: 1`` makes stim (T, 1, H, W))."""
    axis = params["axis"]

    def apply(x: np.ndarray, ctx: OpContext) -> np.ndarray:
        if not -x.ndim - 1 <= axis <= x.ndim:
            raise op_error(where, f"axis {axis} out of range for a {x.ndim}-d array {x.shape}")
        return np.expand_dims(x, axis)

    return apply


@transform_op("cast")
def cast(params: dict[str, Any], where: str) -> Transform:
    """Convert to ``dtype`` (numpy's conversion rules, as torch's ``.to``)."""
    dtype = np.dtype(params["dtype"])

    def apply(x: np.ndarray, ctx: OpContext) -> np.ndarray:
        return x.astype(dtype)

    return apply


@transform_op("select_units")
def select_units(params: dict[str, Any], where: str) -> Transform:
    """Keep some units (last axis): ``"cids"`` = the dataset config's units, or columns."""
    indices = params["indices"]

    def apply(x: np.ndarray, ctx: OpContext) -> np.ndarray:
        columns = ctx.kept_columns(where) if indices == "cids" else np.asarray(indices, np.int64)
        if x.ndim == 0 or (columns.size and columns.max() >= x.shape[-1]):
            raise op_error(
                where, f"column {columns.max() if columns.size else 0} beyond shape {x.shape}"
            )
        return x[..., columns]

    return apply


@transform_op("splitrelu")
def splitrelu(params: dict[str, Any], where: str) -> Transform:
    """``[relu(x), relu(-x)]`` joined along ``split_dim``: that axis doubles in size.

    The gain VisionCore multiplies the positive half by is 1 at construction; a dataset
    transform never trains it, so ``trainable_gain`` changes nothing.
    """
    split_dim = params["split_dim"]

    def apply(x: np.ndarray, ctx: OpContext) -> np.ndarray:
        _check_axis(x, split_dim, where, "split_dim")
        zero = np.zeros((), dtype=x.dtype)
        return np.concatenate([np.maximum(x, zero), np.maximum(-x, zero)], axis=split_dim)

    return apply


def _check_axis(x: np.ndarray, axis: int, where: str, name: str) -> None:
    if not -x.ndim <= axis < x.ndim:
        raise op_error(where, f"{name} {axis} out of range for a {x.ndim}-d array {x.shape}")
