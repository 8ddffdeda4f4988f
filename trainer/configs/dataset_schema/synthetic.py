"""Generator parameters for synthetic V1 sessions: presets and their validation (the
dataset schema's ``synthetic:`` block; the generator in ``trainer.synthetic`` reads them).

A dataset config's ``synthetic:`` block names a ``preset`` and overrides any of its fields;
per-session files may override them again (deep merge). This module is the single place
that knows which generator fields exist, their defaults and their allowed values, so that
a typo in YAML fails at load time with the file and key, never mid-generation.
"""

from __future__ import annotations

from typing import Any

from trainer.contract.errors import ConfigError

STIM_TYPES = ("backimage", "gaborium", "gratings")
# Bump when the generator's output for the same parameters changes: it is part of the
# session folder name, so stale sessions on shared volumes are regenerated, not reused.
GENERATOR_VERSION = 2

# Defaults shared by every preset; presets override a few of them.
_BASE: dict[str, Any] = {
    "image_size": 24,  # frame height = width in pixels
    "n_frames": 24000,  # frames per session
    "trial_frames": [150, 400],  # trial length range (frames), drawn uniformly
    "bank_seed": 0,  # seed of the Gabor bank shared by every session (and dataset)
    "n_orientations": 4,  # Gabor bank = orientations x spatial frequencies
    # One frequency x 4 orientations x 2 temporal kernels keeps the number of distinct
    # response types (x simple/complex = 16) within a small core's channels: the default
    # data stays learnable in CPU minutes. The realistic preset is more diverse.
    "spatial_freqs": [0.15],  # cycles per pixel
    "frac_complex": 0.4,  # fraction of complex (energy-model) cells
    "rf_offset": None,  # [dy, dx] session RF offset (px); None = drawn from the session seed
    "rf_offset_max": 2.0,  # |offset| bound when drawn
    "rf_jitter": 2.5,  # per-unit RF centre jitter around the session offset (px)
    "temporal_peak_ms": [20.0, 40.0],  # peak time range of the biphasic temporal kernels
    "n_temporal_kernels": 2,  # temporal kernel bank size
    "mean_rate": [0.15, 0.6],  # per-unit target mean spikes per bin
    "rate_slope": [1.5, 2.5],  # LN nonlinearity slope on the standardised drive
    "saccade_rate_hz": 1.5,
    "saccade_amp_px": [2.0, 6.0],
    "drift_sd_px": 0.2,  # fixational drift per frame
    "saccade_gain": 0.2,  # max saccade-locked gain modulation amplitude per unit
    "missing_unit_frac": 0.25,  # fraction of units with a missing epoch (dfs = 0)
    "missing_epoch_frac": [0.1, 0.3],  # length of that epoch as a fraction of the session
    "contrast": [0.3, 1.0],  # per-trial frame contrast range (also drifts within a trial)
    "gabors_per_frame": 4,  # gaborium density
    "grating_hold_frames": 6,  # gratings: frames per grating before a new one is drawn
    "n_background_images": 8,  # backimage: distinct 1/f images
    # Raw sessions (``trainer.synthetic.raw``, recorded at 240 Hz) only:
    "pixels_per_degree": 4.0,  # stimulus pixels per degree of visual angle (eyepos unit)
    "eye_noise_deg": 0.01,  # eye tracker measurement noise (degrees, per sample)
    "blink_rate_hz": 0.25,  # tracker dropouts (dpi_valid false) per second
    "blink_ms": [80.0, 250.0],  # dropout duration range
    "iti_s": [0.2, 0.8],  # gap between trials on the session clock (t_bins)
    "n_multi_units": 1,  # units with a high median missing percentage throughout
    "missing_pct_step_s": 5.0,  # sampling interval of the missing-percentage curves
}

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "image_size": 16,
        "n_frames": 3000,
        "trial_frames": [100, 200],
        "spatial_freqs": [0.18],
        "rf_jitter": 1.5,
        "rf_offset_max": 1.0,
        "temporal_peak_ms": [12.0, 20.0],
        "n_temporal_kernels": 2,
        "mean_rate": [0.3, 0.8],
        "n_background_images": 4,
    },
    "default": {},
    "realistic": {
        # 64 px: crops from which an adapter resamples a 51 x 51 grid (VisionCore's input).
        "image_size": 64,
        "n_frames": 60000,
        "trial_frames": [240, 1200],
        "n_orientations": 8,
        "spatial_freqs": [0.06, 0.1, 0.16],
        "rf_offset_max": 6.0,
        "rf_jitter": 8.0,
        "temporal_peak_ms": [30.0, 60.0],
        "n_temporal_kernels": 6,
        "mean_rate": [0.05, 0.8],
        "saccade_gain": 0.5,
        "saccade_rate_hz": 3.0,
        "saccade_amp_px": [3.0, 15.0],
        "gabors_per_frame": 8,
        "n_background_images": 32,
        "n_multi_units": 2,
    },
}

_RANGE_KEYS = {
    "trial_frames",
    "temporal_peak_ms",
    "mean_rate",
    "rate_slope",
    "saccade_amp_px",
    "missing_epoch_frac",
    "contrast",
    "blink_ms",
    "iti_s",
}
_FRACTION_KEYS = {"frac_complex", "missing_unit_frac"}


def resolve_params(block: dict[str, Any]) -> dict[str, Any]:
    """Preset defaults overlaid with ``block``; raises ``ValueError(key, message)``."""
    preset = block.get("preset", "default")
    if preset not in PRESETS:
        raise ValueError("preset", f"unknown preset {preset!r}; allowed: {sorted(PRESETS)}")
    params = {**_BASE, **PRESETS[preset]}
    for key, value in block.items():
        if key == "preset":
            continue
        if key not in _BASE:
            raise ValueError(key, f"unknown generator field; allowed: {sorted(_BASE)}")
        params[key] = value
    params["preset"] = preset
    _check(params)
    return params


def _check(p: dict[str, Any]) -> None:
    """Range and type checks that would otherwise surface as numpy errors."""
    for key in ("pixels_per_degree", "missing_pct_step_s"):
        if isinstance(p[key], bool) or not isinstance(p[key], int | float) or not p[key] > 0:
            raise ValueError(key, f"must be > 0, got {p[key]!r}")
    if not isinstance(p["n_multi_units"], int) or p["n_multi_units"] < 0:
        raise ValueError("n_multi_units", f"must be an integer >= 0, got {p['n_multi_units']!r}")
    for key in ("image_size", "n_frames", "n_orientations", "n_temporal_kernels"):
        if not isinstance(p[key], int) or p[key] < 1:
            raise ValueError(key, f"must be a positive integer, got {p[key]!r}")
    if p["image_size"] < 8:
        raise ValueError("image_size", f"must be >= 8 pixels, got {p['image_size']}")
    for key in _RANGE_KEYS:
        v = p[key]
        if not (isinstance(v, list | tuple) and len(v) == 2 and float(v[0]) <= float(v[1])):
            raise ValueError(key, f"must be a [low, high] pair with low <= high, got {v!r}")
    for key in _FRACTION_KEYS:
        if not 0.0 <= float(p[key]) <= 1.0:
            raise ValueError(key, f"must be a fraction in [0, 1], got {p[key]!r}")
    if p["trial_frames"][0] < 2 or p["trial_frames"][1] > p["n_frames"]:
        raise ValueError("trial_frames", f"must lie in [2, n_frames], got {p['trial_frames']}")
    if p["rf_offset"] is not None and len(p["rf_offset"]) != 2:
        raise ValueError("rf_offset", f"must be [dy, dx] or null, got {p['rf_offset']!r}")
    if not p["spatial_freqs"] or not all(0 < float(f) <= 0.5 for f in p["spatial_freqs"]):
        raise ValueError("spatial_freqs", "must be a non-empty list in (0, 0.5] cycles/px")


# Keys of a ``synthetic:`` block that belong to the session, not to the generator.
SESSION_GENERATOR_KEYS = ("n_units", "seed", "n_lags")


def check_synthetic_block(block: dict[str, Any], file: str) -> dict[str, Any]:
    """A session's ``synthetic:`` block checked in full (one ``ConfigError`` naming the file
    and ``synthetic.<key>``); returns the resolved generator parameters.

    Here, in the torch-free schema, so that ``corejob submit`` refuses a typo in a
    generator field before anything is created, with the trainer's own message.
    """
    n_units = block.get("n_units")
    if isinstance(n_units, bool) or not isinstance(n_units, int) or n_units < 1:
        raise ConfigError(file, "synthetic.n_units", f"must be a positive integer, got {n_units!r}")
    for key in ("seed", "n_lags"):
        value = block.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(file, f"synthetic.{key}", f"must be an integer >= 0, got {value!r}")
    generator = {k: v for k, v in block.items() if k not in SESSION_GENERATOR_KEYS}
    try:
        return resolve_params(generator)
    except ValueError as error:
        key, message = error.args if len(error.args) == 2 else ("synthetic", str(error))
        raise ConfigError(file, f"synthetic.{key}", message) from None
