"""One synthetic session as in-memory arrays: the pure core of the generator.

``simulate_session(spec)`` is deterministic in ``spec`` (seeds included) and touches no
files; ``trainer.synthetic.store`` writes its result to disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from trainer.configs.dataset_schema.synthetic import GENERATOR_VERSION
from trainer.synthetic import neurons, stimuli

STIM_SCALE = 1.0 / 127.5  # float pixel = uint8 * STIM_SCALE + STIM_OFFSET, in [-1, 1]
STIM_OFFSET = -1.0
SACCADE_BASIS_MS = 400.0  # time-since-saccade features cover this window
_QUANTIZE_BLOCK = 2048  # frames per block when quantising


@dataclass(frozen=True)
class SessionSpec:
    """Everything that determines a session's arrays."""

    name: str
    stim_type: str
    n_units: int
    seed: int
    n_lags: int
    behavior_dim: int
    frame_rate_hz: float
    params: dict = field(default_factory=dict)


@dataclass
class GeneratedSession:
    """Generated arrays (names = file stems on disk) plus JSON metadata."""

    arrays: dict[str, np.ndarray]
    meta: dict


def quantize(frames: np.ndarray, contrast: np.ndarray | None = None) -> np.ndarray:
    """uint8 pixels of float frames (times a per-frame ``contrast``), block by block.

    Blocks of frames keep the float temporaries in cache and out of the peak memory of a
    full-size session (the arithmetic per pixel is the same as on the whole array).
    """
    out = np.empty(frames.shape, dtype=np.uint8)
    for start in range(0, frames.shape[0], _QUANTIZE_BLOCK):
        block = frames[start : start + _QUANTIZE_BLOCK]
        if contrast is not None:
            block = block * contrast[start : start + _QUANTIZE_BLOCK, None, None]
        out[start : start + _QUANTIZE_BLOCK] = np.rint(
            (np.clip(block, -1.0, 1.0) - STIM_OFFSET) / STIM_SCALE
        )
    return out


def dequantize(stim_u8: np.ndarray) -> np.ndarray:
    return stim_u8.astype(np.float32) * np.float32(STIM_SCALE) + np.float32(STIM_OFFSET)


def behavior_covariates(eye: stimuli.EyeTrace, spec: SessionSpec) -> tuple[np.ndarray, list[str]]:
    """Eye position and velocity, then raised-cosine features of the time since a saccade.

    The features carry exactly the information the saccade-locked gain depends on, so a
    behavior modulator can in principle recover it; ``behavior_dim`` picks how many.
    """
    size = spec.params["image_size"]
    pos = eye.position / (size / 2.0)
    vel = np.diff(eye.position, axis=0, prepend=eye.position[:1]) / spec.params["saccade_amp_px"][1]
    columns = [pos[:, 0], pos[:, 1], vel[:, 0], vel[:, 1]]
    names = ["eye_y", "eye_x", "eye_vy", "eye_vx"]
    n_basis = max(spec.behavior_dim - 4, 0)
    if n_basis:
        t_ms = eye.frames_since_saccade * 1000.0 / spec.frame_rate_hz
        centres = np.linspace(0.0, SACCADE_BASIS_MS, n_basis)
        width = SACCADE_BASIS_MS / max(n_basis - 1, 1) * 2.0
        for c in centres:
            arg = np.clip((t_ms - c) / width, -1.0, 1.0)
            columns.append(0.5 * (1.0 + np.cos(np.pi * arg)))
            names.append(f"saccade_t{c:.0f}ms")
    behavior = np.stack(columns, axis=1)[:, : spec.behavior_dim]
    return behavior.astype(np.float32), names[: spec.behavior_dim]


def missing_epochs(n_frames: int, n_units: int, params: dict, rng) -> np.ndarray:
    """``dfs`` (T, N) uint8: 0 where a unit was not recorded (one epoch for some units)."""
    dfs = np.ones((n_frames, n_units), dtype=np.uint8)
    lossy = np.flatnonzero(rng.random(n_units) < params["missing_unit_frac"])
    for unit in lossy:
        length = int(rng.uniform(*params["missing_epoch_frac"]) * n_frames)
        start = int(rng.integers(0, max(n_frames - length, 1)))
        dfs[start : start + length, unit] = 0
    return dfs


def simulate_session(spec: SessionSpec) -> GeneratedSession:
    """Stimulus, eye trace, units, rates and Poisson spikes for one session."""
    p = spec.params
    rng = np.random.default_rng(spec.seed)
    bank_rng = np.random.default_rng(p["bank_seed"])
    trials = stimuli.trial_ids(p["n_frames"], p["trial_frames"], rng)
    eye = stimuli.eye_trace(trials, p, spec.frame_rate_hz, rng)
    contrast = stimuli.frame_contrast(trials, p, rng)
    frames = stimuli.stimulus_frames(spec.stim_type, trials, eye, p, rng)
    stim_u8 = quantize(frames, contrast)
    del frames  # a full-size session's float frames are gigabytes
    units = neurons.sample_units(spec.n_units, p, spec.n_lags, spec.frame_rate_hz, rng, bank_rng)
    gain = neurons.saccade_gain(eye.frames_since_saccade, units, spec.frame_rate_hz)
    rates = neurons.firing_rates(dequantize(stim_u8), units, gain)
    dfs = missing_epochs(p["n_frames"], spec.n_units, p, rng)
    robs = (rng.poisson(rates) * dfs).astype(np.float32)
    behavior, behavior_names = behavior_covariates(eye, spec)
    arrays = {
        "stim": stim_u8,
        "robs": robs,
        "dfs": dfs,
        "behavior": behavior,
        "trial_ids": trials,
        "contrast": contrast,
        "rates": rates,
        "eye_position": eye.position.astype(np.float32),
    }
    meta = {
        "session": spec.name,
        "stim_type": spec.stim_type,
        "n_frames": int(p["n_frames"]),
        "n_units": spec.n_units,
        "image_shape": [p["image_size"], p["image_size"]],
        "n_lags": spec.n_lags,
        "behavior_dim": spec.behavior_dim,
        "behavior_names": behavior_names,
        "frame_rate_hz": spec.frame_rate_hz,
        "stim_scale": STIM_SCALE,
        "stim_offset": STIM_OFFSET,
        "seed": spec.seed,
        "generator_version": GENERATOR_VERSION,
        "params": p,
        "n_trials": int(trials.max()) + 1,
        "n_saccades": int(eye.saccade_onsets.size),
        "units": units.describe(),
    }
    return GeneratedSession(arrays, meta)
