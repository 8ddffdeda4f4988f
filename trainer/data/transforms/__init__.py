"""VisionCore's dataset transform vocabulary: ops, datafilters, sampling, the trial split.

A dataset config's op lists are resolved by the torch-free schema
(``trainer.configs.dataset_schema.ops.check_op_list``) and built here into plain functions
of numpy arrays. ``build_transform`` mirrors VisionCore's ``make_pipeline`` (the source
array is cast to float32 first, as VisionCore's ``prepare_data`` does, then each op runs in
order); ``build_datafilter`` mirrors ``make_datafilter_pipeline`` (masks AND-combined with
broadcasting, (T, 1) & (T, N) -> (T, N)). Both check the whole list when built, so a bad
config fails before any data is read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from trainer.configs.dataset_schema.ops import check_op_list, op_key, split_where
from trainer.data.transforms import (  # noqa: F401 (importing them registers their ops)
    bases,
    datafilters,
    pointwise,
    temporal,
)
from trainer.data.transforms.codec import affine_stim_codec
from trainer.data.transforms.registry import (
    DATAFILTER_REGISTRY,
    TRANSFORM_REGISTRY,
    OpContext,
)
from trainer.data.transforms.sampling import resample, sampling_factor
from trainer.data.transforms.splitting import split_by_trials

__all__ = [
    "DATAFILTER_REGISTRY",
    "TRANSFORM_REGISTRY",
    "OpContext",
    "affine_stim_codec",
    "build_datafilter",
    "build_transform",
    "resample",
    "sampling_factor",
    "split_by_trials",
]


def _op_where(where: str, index: int, name: str) -> str:
    source, _ = split_where(where)
    return f"{source}: {op_key(where, index, name)}"


def build_transform(ops: list[Any], where: str) -> Callable[[np.ndarray, OpContext], np.ndarray]:
    """The pipeline of a ``transforms.<name>.ops`` list (raw or resolved).

    ``where`` is ``"<file>: <key of the list>"``; errors name ``<key>[i].<op>``.
    """
    steps = []
    for index, entry in enumerate(check_op_list(ops, where, "transform")):
        name, params = next(iter(entry.items()))
        steps.append(TRANSFORM_REGISTRY[name](params, _op_where(where, index, name)))

    def pipeline(x: np.ndarray, ctx: OpContext) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        for step in steps:
            x = step(x, ctx)
        return x

    return pipeline


def build_datafilter(
    ops: list[Any], where: str
) -> Callable[[Mapping[str, np.ndarray], OpContext], np.ndarray]:
    """The combined mask of a ``datafilters.<name>.ops`` list: bool (T, 1) or (T, n_kept).

    No filters: every bin is valid, (T, 1) true.
    """
    filters = []
    for index, entry in enumerate(check_op_list(ops, where, "datafilter")):
        name, params = next(iter(entry.items()))
        filters.append(DATAFILTER_REGISTRY[name](params, _op_where(where, index, name)))

    def combined(arrays: Mapping[str, np.ndarray], ctx: OpContext) -> np.ndarray:
        mask = np.ones((np.asarray(ctx.trial_inds).shape[0], 1), dtype=bool)
        for apply in filters:
            part = apply(arrays, ctx)
            mask = mask & (part[:, None] if part.ndim == 1 else part)
        return mask

    return combined
