"""A synthetic session as a lab records it: the pure core of the raw generator.

``simulate_raw_session(spec)`` gives a :class:`RawSession` at 240 Hz with every stimulus
type of ``spec.types`` shown to the *same* ground-truth neurons, in blocks of trials on one
session clock. The display updates at ``frame_rate_hz`` (120 Hz: each frame lasts two
bins, frames start with their trial), so a dataset config that samples 240 -> 120 Hz sees
every displayed frame once, and the neurons' rates summed over a frame's bins are the
120 Hz rates the presets were tuned for: the quality bench's oracle keeps its meaning.

Deterministic in ``spec`` (seeds included); touches no files.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from trainer.configs.dataset_schema.synthetic import STIM_TYPES
from trainer.recordings.session import MissingPct, RawRecording, RawSession
from trainer.synthetic import neurons, stimuli
from trainer.synthetic.raw.eyes import blink_mask, eye_movements, tracker_record
from trainer.synthetic.raw.units import (
    MULTI_UNIT_RATE_GAIN,
    cluster_ids,
    drive,
    frame_projection,
    pooled_rates,
    sorting_quality,
)
from trainer.synthetic.session import STIM_OFFSET, STIM_SCALE, quantize

# Bump when the raw generator's output for the same spec changes: it is part of the
# session folder name, so stale sessions on shared volumes are regenerated, not reused.
RAW_GENERATOR_VERSION = 1
SOURCE_RATE_HZ = 240.0  # VisionCore's recordings: the DDPI and the display clock
DISPLAY_RATE_HZ = 120.0
TYPE_GAP_S = 5.0  # between the blocks of two stimulus types on the session clock


@dataclass(frozen=True)
class RawSessionSpec:
    """Everything that determines a raw session's arrays.

    ``params`` are resolved generator parameters (``presets.resolve_params``);
    ``n_frames`` there counts display frames *per stimulus type*. ``n_lags`` is the
    length of the neurons' temporal kernels in display frames (the lag window a model
    needs to capture them, e.g. a dataset config's ``keys_lags.stim``).
    """

    name: str
    n_units: int
    seed: int
    types: tuple[str, ...]
    n_lags: int
    params: dict[str, Any] = field(default_factory=dict)
    source_rate: float = SOURCE_RATE_HZ
    frame_rate_hz: float = DISPLAY_RATE_HZ

    def __post_init__(self) -> None:
        unknown = [t for t in self.types if t not in STIM_TYPES]
        if not self.types or unknown or len(set(self.types)) != len(self.types):
            raise ValueError("types", f"{list(self.types)}: distinct names from {STIM_TYPES}")
        ratio = self.source_rate / self.frame_rate_hz
        if ratio < 1 or abs(ratio - round(ratio)) > 1e-9:
            raise ValueError(
                "source_rate", f"{self.source_rate} Hz is no multiple of {self.frame_rate_hz} Hz"
            )
        if self.n_units < 1 or self.n_lags < 1:
            raise ValueError("n_units", "n_units and n_lags must be positive")

    @property
    def bins_per_frame(self) -> int:
        return round(self.source_rate / self.frame_rate_hz)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, stable: what names the session's folder (with the generator version)."""
        return {**asdict(self), "types": list(self.types)}


@dataclass
class _TypeBlock:
    """One stimulus type's trials before the rates (which need every type's drive)."""

    stim_type: str
    rng: np.random.Generator
    covariates: dict[str, np.ndarray]
    drive: np.ndarray  # (B, N)
    gain: np.ndarray  # (B, N)
    meta: dict[str, Any]
    end_s: float


def trial_clock(trials: np.ndarray, source_rate: float, params: dict, start_s: float, rng):
    """``t_bins`` (bin centres, s) with an inter-trial gap of ``iti_s``; the clock's end."""
    lengths = np.bincount(trials)
    gaps = rng.uniform(*params["iti_s"], size=lengths.size)
    durations = lengths / source_rate + gaps
    starts = start_s + np.concatenate([[0.0], np.cumsum(durations[:-1])])
    first_bin = np.repeat(np.cumsum(lengths) - lengths, lengths)
    t_bins = starts[trials] + (np.arange(trials.size) - first_bin + 0.5) / source_rate
    return t_bins, float(t_bins[-1] + 0.5 / source_rate)


def _simulate_type(
    stim_type: str, spec: RawSessionSpec, units, rng, start_s: float, first_trial: int
) -> _TypeBlock:
    """Trials, eye, stimulus and drive of one type (display frames held for their bins)."""
    p, bpf, fs = spec.params, spec.bins_per_frame, spec.source_rate
    frame_trials = stimuli.trial_ids(p["n_frames"], p["trial_frames"], rng)
    trials = np.repeat(frame_trials, bpf)
    eye = eye_movements(trials, p, fs, bpf, rng)
    valid = blink_mask(trials.size, p, fs, rng)
    contrast = stimuli.frame_contrast(frame_trials, p, rng)
    on_screen = stimuli.EyeTrace(  # where the eye is when each frame appears
        eye.position_px[::bpf], eye.bins_since_saccade[::bpf] / bpf, eye.saccade_onsets // bpf
    )
    frames = stimuli.stimulus_frames(stim_type, frame_trials, on_screen, p, rng)
    stim = quantize(frames, contrast)
    del frames  # a full-size session's float frames are gigabytes
    unit_drive = drive(frame_projection(stim, units), units, bpf)
    t_bins, end_s = trial_clock(trials, fs, p, start_s, rng)
    covariates = {
        "stim": np.repeat(stim, bpf, axis=0),
        "eyepos": tracker_record(eye, valid, p, rng),
        "dpi_valid": valid,
        "trial_inds": trials.astype(np.int64) + first_trial,
        "t_bins": t_bins,
    }
    meta = {
        "frame_rate_hz": spec.frame_rate_hz,
        "bins_per_frame": bpf,
        "n_trials": int(frame_trials.max()) + 1,
        "n_saccades": int(eye.saccade_onsets.size),
        "stim_scale": STIM_SCALE,
        "stim_offset": STIM_OFFSET,
        "pixels_per_degree": p["pixels_per_degree"],
    }
    gain = neurons.saccade_gain(eye.bins_since_saccade, units, fs)
    return _TypeBlock(stim_type, rng, covariates, unit_drive, gain, meta, end_s)


def simulate_raw_session(spec: RawSessionSpec) -> RawSession:
    """Every stimulus type of ``spec`` seen by one population of LN-Poisson neurons.

    Covariates per type: ``stim`` uint8, ``robs`` Poisson counts, ``rates`` their exact
    expectation (the oracle; spikes thinned by the unit's missing percentage included),
    ``eyepos`` degrees with ``dpi_valid`` dropouts, ``trial_inds`` (contiguous, unique in
    the session), ``t_bins``. The session holds non-contiguous ``cids`` and missing-pct
    curves; ``info`` records the ground truth of every unit.
    """
    p, fs = spec.params, spec.source_rate
    rng = np.random.default_rng(spec.seed)
    bank_rng = np.random.default_rng(p["bank_seed"])
    n_kernel = spec.n_lags * spec.bins_per_frame
    units = neurons.sample_units(spec.n_units, p, n_kernel, fs, rng, bank_rng)
    cids = cluster_ids(spec.n_units, rng)
    blocks, start_s, first_trial = [], 0.0, 0
    for index, stim_type in enumerate(spec.types):
        type_rng = np.random.default_rng([spec.seed, index + 1])
        block = _simulate_type(stim_type, spec, units, type_rng, start_s, first_trial)
        blocks.append(block)
        start_s, first_trial = block.end_s + TYPE_GAP_S, first_trial + block.meta["n_trials"]
    quality = sorting_quality(spec.n_units, blocks[-1].end_s, p, rng)
    missing = MissingPct(quality.times, quality.pct)
    rates = pooled_rates(
        [b.drive for b in blocks], [b.gain for b in blocks], units, spec.bins_per_frame
    )
    boost = np.where(quality.multi_unit, MULTI_UNIT_RATE_GAIN, 1.0).astype(np.float32)
    recordings = {}
    for block, rate in zip(blocks, rates, strict=True):
        kept = 1.0 - missing.at(block.covariates["t_bins"]) / 100.0
        expected = (rate * boost * kept).astype(np.float32)
        robs = block.rng.poisson(expected).astype(np.float32)
        covariates = {**block.covariates, "robs": robs, "rates": expected}
        recordings[block.stim_type] = RawRecording(block.stim_type, fs, covariates, block.meta)
    return RawSession(spec.name, cids, recordings, missing, _session_info(spec, units, quality))


def _session_info(spec: RawSessionSpec, units, quality) -> dict[str, Any]:
    """What VisionCore's session files say (``lab``, ``eye``) plus the ground truth."""
    described = units.describe()
    for unit, multi in zip(described, quality.multi_unit, strict=True):
        unit["multi_unit"] = bool(multi)
    return {
        "lab": "synthetic",
        "eye": "right",
        "generator": "trainer.synthetic.raw",
        "generator_version": RAW_GENERATOR_VERSION,
        "spec": spec.to_dict(),
        "units": described,
        "lost_epochs_s": [list(epoch) for epoch in quality.lost_epoch_s],
    }
