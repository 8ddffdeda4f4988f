"""``sampling: {source_rate, target_rate}``: re-bin a recording to a lower rate.

VisionCore reshapes the whole recording into groups of ``factor = source_rate /
target_rate`` bins, so a group may straddle two trials (its trial id then becomes their
average, a trial that never existed). Here groups never leave a *segment*: a run of bins
with one trial id and no gap in time (a step over 1.5 source bins). Each segment is cut
into whole groups from its first bin; the last ``len % factor`` bins of a segment, too few
for a target bin, are dropped (VisionCore drops the recording's tail the same way).

Per target bin (one group of source bins):
- ``robs``, ``rates``: the sum (spike counts per target bin; expected counts likewise);
- ``stim`` (and VisionCore's ``stim_phase``, ``ori``, ``sf``): the group's first frame;
- ``trial_inds``: the group's trial (every bin of the group has it);
- ``t_bins``: the mean of the group's bin centres, i.e. the target bin's centre;
- ``dpi_valid``: true only if the tracker was valid at every source bin of the group
  (VisionCore averages it and tests ``> 0``, i.e. any: a partly tracked bin would then
  average eye positions with invalid samples);
- other float covariates (``eyepos``, ...): the mean; other bool ones: all; other integer
  ones: the first value (an id is not averaged), ``psth_inds`` divided by the factor.
"""

from __future__ import annotations

import numpy as np

from trainer.configs.dataset_schema.ops import split_where
from trainer.contract.errors import ConfigError
from trainer.recordings.session import RawRecording

SUMMED = ("robs", "rates")
DECIMATED = ("stim", "stim_phase", "ori", "sf", "trial_inds")
GAP_BINS = 1.5  # a step in t_bins longer than this many source bins ends a segment


def sampling_factor(source_rate: float, target_rate: float, where: str = "sampling") -> int:
    """The integer number of source bins per target bin (``ConfigError`` otherwise).

    ``where`` is ``"<file>: <key of the sampling block>"`` (``"a.yaml: sampling"``).
    """
    source, block = split_where(where)
    key = f"{block}.target_rate" if block else "target_rate"
    if target_rate <= 0:
        raise ConfigError(source, key, f"must be > 0, got {target_rate}")
    factor = source_rate / target_rate
    if factor < 1 - 1e-9 or abs(factor - round(factor)) > 1e-6:
        raise ConfigError(
            source,
            key,
            f"{target_rate:g} Hz must divide the source rate {source_rate:g} Hz"
            " (a whole number of source bins per target bin)",
        )
    return round(factor)


def group_starts(trial_inds: np.ndarray, t_bins: np.ndarray, rate: float, factor: int):
    """First source bin of every target bin: whole groups inside each segment."""
    steps = trial_inds.shape[0]
    if steps == 0:
        return np.zeros(0, dtype=np.int64)
    breaks = np.ones(steps, dtype=bool)
    breaks[1:] = (trial_inds[1:] != trial_inds[:-1]) | (np.diff(t_bins) > GAP_BINS / rate)
    seg_starts = np.flatnonzero(breaks)
    seg_lengths = np.diff(np.append(seg_starts, steps))
    per_segment = seg_lengths // factor
    first_of_segment = np.repeat(np.cumsum(per_segment) - per_segment, per_segment)
    rank = np.arange(per_segment.sum()) - first_of_segment
    return np.repeat(seg_starts, per_segment) + factor * rank


def resample(recording: RawRecording, target_rate: float, where: str = "sampling") -> RawRecording:
    """The recording at ``target_rate`` (see the module docstring for each covariate).

    ``where`` names the config's sampling block in errors (``"a.yaml: sampling"``).
    """
    factor = sampling_factor(recording.source_rate, target_rate, where)
    if factor == 1:
        return recording
    cov = recording.covariates
    starts = group_starts(
        np.asarray(cov["trial_inds"]), np.asarray(cov["t_bins"]), recording.source_rate, factor
    )
    groups = starts[:, None] + np.arange(factor)
    out = {key: _rebin(key, np.asarray(x), starts, groups, factor) for key, x in cov.items()}
    meta = {**recording.meta, "source_rate": float(target_rate), "resampled_from": factor}
    return RawRecording(recording.stim_type, float(target_rate), out, meta)


def _rebin(key: str, x: np.ndarray, starts: np.ndarray, groups: np.ndarray, factor: int):
    if key in SUMMED:
        return x[groups].sum(axis=1, dtype=x.dtype)
    if key == "psth_inds":
        return x[starts] // factor
    if key in DECIMATED or x.dtype.kind in "iu":
        return x[starts]
    if x.dtype.kind == "b":
        return x[groups].all(axis=1)
    if key == "t_bins" or x.dtype.kind == "f":
        return x[groups].mean(axis=1, dtype=np.float64).astype(x.dtype)
    return x[starts]
