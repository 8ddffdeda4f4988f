"""Trials, eye movements, frame contrast and the three stimulus types (pure numpy).

Frames are float in [-1, 1]; the generator quantises them to uint8 before computing the
rates, so the ground truth sees exactly the pixels a model will see.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GABORIUM_SIGMA = (1.0, 3.5)  # envelope sigma range of gaborium Gabors (px)
_BLOCK_FRAMES = 1024  # frames built at once: bounded memory, cache-friendly blocks


@dataclass(frozen=True)
class EyeTrace:
    """Eye position (px, relative to the screen centre) and saccade bookkeeping per frame."""

    position: np.ndarray  # (T, 2) float (y, x)
    frames_since_saccade: np.ndarray  # (T,) float; large before a trial's first saccade
    saccade_onsets: np.ndarray  # (S,) frame indices


def trial_ids(n_frames: int, trial_frames, rng) -> np.ndarray:
    """Trial id per frame; lengths uniform in ``trial_frames``; the last trial may be short."""
    ids = np.empty(n_frames, dtype=np.int32)
    start, trial = 0, 0
    while start < n_frames:
        length = int(rng.integers(trial_frames[0], trial_frames[1] + 1))
        ids[start : start + length] = trial
        start += length
        trial += 1
    return ids


def eye_trace(trials: np.ndarray, params: dict, frame_rate_hz: float, rng) -> EyeTrace:
    """Fixational drift (an Ornstein-Uhlenbeck walk) plus saccades at Poisson times."""
    n = trials.shape[0]
    limit = params["image_size"] / 2.0
    p_saccade = params["saccade_rate_hz"] / frame_rate_hz
    steps = rng.normal(0.0, params["drift_sd_px"], size=(n, 2))
    saccade = rng.random(n) < p_saccade
    amps = rng.uniform(*params["saccade_amp_px"], size=n)
    angles = rng.uniform(0.0, 2 * np.pi, size=n)
    jumps = np.stack([np.sin(angles), np.cos(angles)], axis=1) * amps[:, None]
    new_trial = np.r_[True, trials[1:] != trials[:-1]]
    saccade &= ~new_trial
    pos = np.zeros((n, 2))
    since = np.zeros(n)
    current, count = np.zeros(2), 1e6
    for t in range(n):
        if new_trial[t]:
            current, count = rng.normal(0.0, 0.5, size=2), 1e6
        elif saccade[t]:
            current, count = np.clip(current + jumps[t], -limit, limit), 0.0
        else:
            current, count = np.clip(0.98 * current + steps[t], -limit, limit), count + 1
        pos[t], since[t] = current, count
    return EyeTrace(pos, since, np.flatnonzero(saccade))


def frame_contrast(trials: np.ndarray, params: dict, rng) -> np.ndarray:
    """Per-frame contrast: a random level per trial with a slow within-trial drift."""
    lo, hi = params["contrast"]
    n_trials = int(trials.max()) + 1
    level = rng.uniform(lo, hi, size=n_trials)[trials]
    wobble = np.sin(2 * np.pi * np.arange(trials.shape[0]) / 500.0 + rng.uniform(0, 2 * np.pi))
    return np.clip(level * (1.0 + 0.15 * wobble), lo, hi).astype(np.float32)


def pink_noise_image(size: int, rng) -> np.ndarray:
    """A 1/f-amplitude noise image scaled to unit peak-ish amplitude."""
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.fftfreq(size)[None, :]
    amplitude = 1.0 / np.maximum(np.hypot(fy, fx), 1.0 / size)
    spectrum = amplitude * np.exp(2j * np.pi * rng.random((size, size)))
    image = np.real(np.fft.ifft2(spectrum))
    image = (image - image.mean()) / (image.std() + 1e-12)
    return np.clip(image / 2.5, -1.0, 1.0)


def backimage_frames(trials: np.ndarray, eye: EyeTrace, params: dict, rng) -> np.ndarray:
    """Crops of natural-statistics images, moved on the retina by the eye trace."""
    size = params["image_size"]
    big = 2 * size + 1
    images = [pink_noise_image(big, rng) for _ in range(params["n_background_images"])]
    choice = rng.integers(0, len(images), size=int(trials.max()) + 1)[trials]
    top_left = np.rint(size / 2.0 + eye.position).astype(int).clip(0, big - size)
    frames = np.empty((trials.shape[0], size, size), dtype=np.float32)
    for t in range(trials.shape[0]):
        y, x = top_left[t]
        frames[t] = images[choice[t]][y : y + size, x : x + size]
    return frames


def gabor_templates(n_templates: int, rng) -> tuple[np.ndarray, int]:
    """Random Gabor patches ``(n, P, P)`` (P = 2R + 1) to be pasted into gaborium frames."""
    radius = int(np.ceil(3 * GABORIUM_SIGMA[1]))
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1].astype(np.float32)
    shape = (n_templates, 1, 1)
    theta, phase = rng.uniform(0, np.pi, shape), rng.uniform(0, 2 * np.pi, shape)
    sf, sigma = rng.uniform(0.05, 0.3, shape), rng.uniform(*GABORIUM_SIGMA, shape)
    u = xx * np.cos(theta) + yy * np.sin(theta)
    patches = np.exp(-(xx**2 + yy**2) / (2 * sigma**2)) * np.cos(2 * np.pi * sf * u + phase)
    return patches.astype(np.float32), radius


def gaborium_frames(n_frames: int, params: dict, rng) -> np.ndarray:
    """Sparse random Gabors: each frame sums a few randomly placed, signed Gabor patches.

    Patches come from a bank of random templates. They are pasted with one vectorised
    indexed add per Gabor slot over a block of frames (each frame gets exactly one patch
    per slot, so the adds never collide); slots are added in order, so every pixel is the
    same float32 sum as pasting patch by patch.
    """
    size, k = params["image_size"], params["gabors_per_frame"]
    templates, radius = gabor_templates(256, rng)
    patch = 2 * radius + 1
    which = rng.integers(0, templates.shape[0], size=(n_frames, k))
    sign = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=(n_frames, k))
    centre = rng.integers(-2, size + 2, size=(n_frames, k, 2))  # may overlap the border
    top_left = centre + patch - radius  # in a canvas padded by ``patch`` on every side
    frames = np.empty((n_frames, size, size), dtype=np.float32)
    offsets = np.arange(patch)
    side = size + 2 * patch
    for start in range(0, n_frames, _BLOCK_FRAMES):
        stop = min(start + _BLOCK_FRAMES, n_frames)
        canvas = np.zeros((stop - start, side, side), dtype=np.float32)
        block = np.arange(stop - start)[:, None, None]
        for j in range(k):
            rows = top_left[start:stop, j, 0][:, None, None] + offsets[None, :, None]
            cols = top_left[start:stop, j, 1][:, None, None] + offsets[None, None, :]
            canvas[block, rows, cols] += (
                sign[start:stop, j, None, None] * templates[which[start:stop, j]]
            )
        np.clip(
            canvas[:, patch : patch + size, patch : patch + size], -1.0, 1.0, out=frames[start:stop]
        )
    return frames


def grating_frames(n_frames: int, params: dict, rng) -> np.ndarray:
    """Full-field drifting gratings; a new orientation/frequency every few frames."""
    size, hold = params["image_size"], params["grating_hold_frames"]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    n_blocks = -(-n_frames // hold)
    theta = np.repeat(rng.uniform(0, np.pi, n_blocks), hold)[:n_frames]
    sf = np.repeat(rng.uniform(0.04, 0.3, n_blocks), hold)[:n_frames]
    speed = np.repeat(rng.uniform(-0.6, 0.6, n_blocks), hold)[:n_frames]
    phase0 = np.repeat(rng.uniform(0, 2 * np.pi, n_blocks), hold)[:n_frames]
    phase = phase0 + speed * (np.arange(n_frames) % hold)
    frames = np.empty((n_frames, size, size), dtype=np.float32)
    for t in range(n_frames):
        u = xx * np.cos(theta[t]) + yy * np.sin(theta[t])
        frames[t] = np.cos(2 * np.pi * sf[t] * u + phase[t])
    return frames


def stimulus_frames(stim_type: str, trials, eye: EyeTrace, params: dict, rng) -> np.ndarray:
    """Unit-contrast frames ``(T, H, W)`` of the given type."""
    if stim_type == "backimage":
        return backimage_frames(trials, eye, params, rng)
    if stim_type == "gaborium":
        return gaborium_frames(trials.shape[0], params, rng)
    if stim_type == "gratings":
        return grating_frames(trials.shape[0], params, rng)
    raise ValueError(f"unknown stimulus type {stim_type!r}")
