"""Eye movements at the recording rate and what a DDPI eye tracker records of them (pure).

The true eye moves the retinal image (backimage crops follow it); the tracker reports it
in degrees with a little noise and loses it during blinks (``dpi_valid`` false, the last
valid sample held, as trackers hold their output). Saccades are not jumps at 240 Hz: each
takes a main-sequence duration (about 20 ms + 2.5 ms per degree) along a smooth profile,
so the eye-velocity transforms of a dataset config see what they see in real recordings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Start of a trial: the eye lands near the fixation point (px standard deviation).
_TRIAL_START_SD_PX = 0.5
_DRIFT_DECAY_PER_FRAME = 0.98  # pull of fixational drift towards the fixation point
_NO_SACCADE_YET = 1e6  # "time since saccade" before a trial's first saccade (bins)


@dataclass(frozen=True)
class EyeMovements:
    """The true eye per bin (px from the screen centre, (y, x) like image rows/columns)."""

    position_px: np.ndarray  # (B, 2) float64
    bins_since_saccade: np.ndarray  # (B,) float64; _NO_SACCADE_YET before the first one
    saccade_onsets: np.ndarray  # (S,) bin indices


def saccade_bins(amplitude_px: float, pixels_per_degree: float, source_rate: float) -> int:
    """Bins a saccade lasts (main sequence: ~20 ms + 2.5 ms per degree)."""
    duration_ms = 20.0 + 2.5 * amplitude_px / pixels_per_degree
    return max(round(duration_ms * source_rate / 1000.0), 1)


def eye_movements(
    trials: np.ndarray, params: dict, source_rate: float, bins_per_frame: int, rng
) -> EyeMovements:
    """Ornstein-Uhlenbeck fixational drift plus smooth saccades at Poisson times.

    ``params`` are the generator's (``saccade_rate_hz``, ``saccade_amp_px``,
    ``drift_sd_px`` per display frame, ``image_size``, ``pixels_per_degree``). The drift
    per bin is scaled so that its spread per display frame is what the parameters say.
    """
    n = trials.shape[0]
    limit = params["image_size"] / 2.0
    decay = _DRIFT_DECAY_PER_FRAME ** (1.0 / bins_per_frame)
    steps = rng.normal(0.0, params["drift_sd_px"] / np.sqrt(bins_per_frame), size=(n, 2))
    wants_saccade = rng.random(n) < params["saccade_rate_hz"] / source_rate
    amps = rng.uniform(*params["saccade_amp_px"], size=n)
    angles = rng.uniform(0.0, 2 * np.pi, size=n)
    new_trial = np.r_[True, trials[1:] != trials[:-1]]
    position, since = np.zeros((n, 2)), np.zeros(n)
    onsets: list[int] = []
    current, count = np.zeros(2), _NO_SACCADE_YET
    path: list[np.ndarray] = []  # the rest of a saccade in flight, one position per bin
    for t in range(n):
        if new_trial[t]:
            current, count, path = rng.normal(0.0, _TRIAL_START_SD_PX, size=2), _NO_SACCADE_YET, []
        elif path:
            current, count = path.pop(0), count + 1
        elif wants_saccade[t]:
            jump = amps[t] * np.array([np.sin(angles[t]), np.cos(angles[t])])
            target = np.clip(current + jump, -limit, limit)
            steps_n = saccade_bins(amps[t], params["pixels_per_degree"], source_rate)
            shape = 0.5 * (1.0 - np.cos(np.pi * np.arange(1, steps_n + 1) / steps_n))
            path = [current + (target - current) * s for s in shape]
            current, count = path.pop(0), 0.0
            onsets.append(t)
        else:
            current = np.clip(decay * current + steps[t], -limit, limit)
            count += 1
        position[t], since[t] = current, count
    return EyeMovements(position, since, np.asarray(onsets, dtype=np.int64))


def blink_mask(n_bins: int, params: dict, source_rate: float, rng) -> np.ndarray:
    """``dpi_valid`` (B,) bool: false during blinks (Poisson onsets, ``blink_ms`` long)."""
    valid = np.ones(n_bins, dtype=bool)
    onsets = np.flatnonzero(rng.random(n_bins) < params["blink_rate_hz"] / source_rate)
    lengths = rng.uniform(*params["blink_ms"], size=onsets.size) * source_rate / 1000.0
    for onset, length in zip(onsets, lengths, strict=True):
        valid[onset : onset + max(int(length), 1)] = False
    return valid


def tracker_record(eye: EyeMovements, valid: np.ndarray, params: dict, rng) -> np.ndarray:
    """``eyepos`` (B, 2) float32 degrees as the tracker reports it: (x right, y up).

    Measurement noise of ``eye_noise_deg``; while ``valid`` is false the last valid sample
    is held (a finite value a careless pipeline would use: the datafilters must drop it).
    """
    ppd = params["pixels_per_degree"]
    degrees = np.stack([eye.position_px[:, 1], -eye.position_px[:, 0]], axis=1) / ppd
    degrees = degrees + rng.normal(0.0, params["eye_noise_deg"], size=degrees.shape)
    last_valid = np.maximum.accumulate(np.where(valid, np.arange(valid.size), 0))
    return degrees[last_valid].astype(np.float32)
