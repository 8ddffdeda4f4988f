"""The datafilters: which bins (and, per unit, which bins) a sample may be drawn from.

Each returns a bool mask, (T, 1) for all units or (T, n_kept) per kept unit; a config's
filters are AND-combined with broadcasting into VisionCore's ``dfs``
(``trainer.data.transforms.build_datafilter``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from trainer.data.transforms.registry import Datafilter, OpContext, datafilter_op, op_error


def trial_starts(trial_inds: np.ndarray) -> np.ndarray:
    """(T,) bool: the first bin of each run of equal trial ids (bin 0 always)."""
    starts = np.ones(trial_inds.shape[0], dtype=bool)
    starts[1:] = trial_inds[1:] != trial_inds[:-1]
    return starts


def all_of_last(valid: np.ndarray, n: int) -> np.ndarray:
    """(T,) bool: ``valid`` held at every one of the ``n`` bins ending at t (t - n + 1 .. t);
    windows reaching before bin 0 are invalid."""
    bad = np.concatenate([[0], np.cumsum(~valid, dtype=np.int64)])
    ends = np.arange(valid.shape[0])
    begins = ends - n + 1
    ok = begins >= 0
    window_bad = bad[ends + 1] - bad[np.maximum(begins, 0)]
    return ok & (window_bad == 0)


@datafilter_op("valid_nlags")
def valid_nlags(params: dict[str, Any], where: str) -> Datafilter:
    """Bins whose last ``n_lags`` bins (itself included) are all tracked (``dpi_valid``)
    and none is the first bin of a trial: a sample's stimulus history lies in one trial.

    So the first bin of each trial and the ``n_lags - 1`` after it are excluded, and every
    eye-tracker dropout excludes itself and the ``n_lags - 1`` bins after it. (VisionCore
    computes the same with ``roll``, which wraps around; the wrap never reaches a valid bin
    because bin 0 always starts a trial.)
    """
    n_lags = params["n_lags"]

    def apply(arrays: Mapping[str, np.ndarray], ctx: OpContext) -> np.ndarray:
        valid = ~trial_starts(np.asarray(ctx.trial_inds)) & (np.asarray(ctx.dpi_valid) > 0)
        return all_of_last(valid, n_lags)[:, None]

    return apply


@datafilter_op("missing_pct")
def missing_pct(params: dict[str, Any], where: str) -> Datafilter:
    """Per kept unit: bins where its missing-spike percentage (interpolated at each bin's
    time) is below ``threshold``. A unit whose median percentage over the recording is at
    or above it is a clear multi-unit (spikes from several cells, so "missing" is
    meaningless): all its bins are kept, as VisionCore does."""
    threshold = params["threshold"]

    def apply(arrays: Mapping[str, np.ndarray], ctx: OpContext) -> np.ndarray:
        curves = ctx.session.missing_pct
        if curves is None:
            raise op_error(
                where,
                f"session {ctx.session.name} has no missing-percentage data"
                " (missing_pct_times.npy/missing_pct.npy); import it or drop this filter",
            )
        pct = curves.at(np.asarray(ctx.t_bins, dtype=np.float64))[:, ctx.kept_columns(where)]
        keep = pct < threshold
        if pct.shape[0]:
            keep[:, np.median(pct, axis=0) >= threshold] = True
        return keep

    return apply
