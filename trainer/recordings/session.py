"""The in-memory form of a recorded session: the one interface between recordings and data.

Everything that produces recordings (the synthetic generator, the VisionCore importer, the
on-disk store) makes these objects; everything that derives training arrays reads them.
Arrays may be ``np.memmap`` views of files: nothing here copies them.

Conventions (VisionCore's): the first axis of every covariate is time at ``source_rate``;
``robs`` columns are in ``cids`` order (all units of the recording, not only the kept ones);
``t_bins`` are bin centres in seconds on the session clock shared by ``missing_pct``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Covariates every recording has, with their dtype kind and shape after the time axis.
# ``None`` in a shape is "any size" (image height/width, number of units).
REQUIRED_COVARIATES: dict[str, tuple[str, tuple[int | None, ...]]] = {
    "stim": ("u", (None, None)),  # (T, H, W) uint8 pixels as displayed
    "robs": ("f", (None,)),  # (T, N) spike counts per bin, float32
    "eyepos": ("f", (2,)),  # (T, 2) gaze position in degrees, float32
    "dpi_valid": ("b", ()),  # (T,) eye tracker valid, bool
    "trial_inds": ("i", ()),  # (T,) trial id per bin, int64; trials are contiguous
    "t_bins": ("f", ()),  # (T,) bin centre in seconds, float64
}


@dataclass(frozen=True)
class RawRecording:
    """One stimulus type of one session (VisionCore's ``<session>/datasets/<type>.dset``).

    ``covariates`` holds at least :data:`REQUIRED_COVARIATES`; extra keys (``rates``, the
    synthetic ground-truth expected counts per bin, shaped like ``robs``; lab-specific
    covariates) travel along and may be named by a dataset config's transforms.
    """

    stim_type: str
    source_rate: float  # bins per second of every covariate
    covariates: Mapping[str, np.ndarray]
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def n_bins(self) -> int:
        return int(self.covariates["t_bins"].shape[0])


@dataclass(frozen=True)
class MissingPct:
    """Each unit's missing-spike percentage (0-100) sampled at ``times`` (seconds).

    VisionCore interpolates it linearly at each bin's time (``missing_pct`` datafilter).
    """

    times: np.ndarray  # (K,) increasing, float64
    pct: np.ndarray  # (K, N) in cids order, float32

    def at(self, t_bins: np.ndarray) -> np.ndarray:
        """(T, N) percentage at ``t_bins``, linear in time, held constant past the ends."""
        out = np.empty((t_bins.shape[0], self.pct.shape[1]), dtype=np.float32)
        for unit in range(self.pct.shape[1]):
            out[:, unit] = np.interp(t_bins, self.times, self.pct[:, unit])
        return out


@dataclass(frozen=True)
class RawSession:
    """A session: its recordings by stimulus type, unit ids and quality data.

    ``info`` is the session's own metadata (VisionCore's per-session YAML fields such as
    ``lab``, ``eye``, ``visual``, ``qcmissing``), kept for configs that refer to it.
    """

    name: str
    cids: np.ndarray  # (N,) int64: the unit id of each robs column
    recordings: Mapping[str, RawRecording]
    missing_pct: MissingPct | None = None
    info: Mapping[str, Any] = field(default_factory=dict)

    def recording(self, stim_type: str) -> RawRecording:
        if stim_type not in self.recordings:
            have = ", ".join(sorted(self.recordings)) or "none"
            raise KeyError(f"session {self.name} has no {stim_type!r} recording (has: {have})")
        return self.recordings[stim_type]


def recording_problems(recording: RawRecording, n_units: int) -> list[str]:
    """What is wrong with a recording's covariates, one line per key (empty when valid).

    Checks presence, dtype kind, trailing shape, one time axis for all, ``robs`` width =
    ``n_units``. Values are not read (arrays may be large memory maps).
    """
    problems = []
    n_bins = None
    for key, (kind, tail) in REQUIRED_COVARIATES.items():
        array = recording.covariates.get(key)
        if array is None:
            problems.append(f"{key}: missing")
            continue
        if array.dtype.kind != kind and not (kind == "i" and array.dtype.kind == "u"):
            problems.append(f"{key}: dtype {array.dtype} (expected kind {kind!r})")
        want = tail if key != "robs" else (n_units,)
        got = array.shape[1:]
        fits = len(got) == len(want) and all(w in (None, g) for w, g in zip(want, got, strict=True))
        if not fits:
            problems.append(f"{key}: shape {array.shape} (expected {_shape_text(want)})")
        if n_bins is None:
            n_bins = array.shape[0]
        elif array.shape[0] != n_bins:
            problems.append(f"{key}: {array.shape[0]} bins, other covariates have {n_bins}")
    if recording.source_rate <= 0:
        problems.append(f"source_rate: {recording.source_rate} (must be > 0)")
    return problems


def _shape_text(tail: tuple[int | None, ...]) -> str:
    """``(T, *, *)``: the expected shape with the time axis and free sizes named."""
    return "(" + ", ".join(["T", *("*" if size is None else str(size) for size in tail)]) + ")"
