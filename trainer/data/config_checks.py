"""Validation of dataset-config fields: the one place that knows the allowed keys and values.

Every check raises ``ConfigError(file, key, message)`` whose message names the allowed
values, so a user fixes the YAML without reading code.
"""

from __future__ import annotations

import zlib
from typing import Any

from trainer.contract.errors import ConfigError
from trainer.synthetic.presets import STIM_TYPES, resolve_params

PARENT_KEYS = {
    "description": "free text",
    "types": f"list of stimulus types from {list(STIM_TYPES)}",
    "sessions": "list of session names (one <session_dir>/<name>.yaml each)",
    "session_dir": "folder of per-session files, relative to the parent file",
    "data_root": "folder holding generated sessions (overridden by --data_root)",
    "frame_rate_hz": "frames per second",
    "n_lags": "stimulus frames per sample (history window)",
    "behavior_dim": "behavior covariates per sample",
    "train_val_split": "fraction of trials used for training, in (0, 1)",
    "seed": "dataset seed (trial split and per-session generator seeds)",
    "stim_type": "default stimulus type of a session",
    "n_units": "default number of units of a session",
    "synthetic": "generator preset and parameters",
    "augmentation": "training-time stimulus augmentation (trainer/data/augment.py), off by default",
}
SESSION_KEYS = ("session", "stim_type", "n_units", "seed", "synthetic")
_REQUIRED = ("types", "sessions", "n_lags", "behavior_dim", "train_val_split", "seed")


def _unknown_keys(data: dict[str, Any], allowed: Any, file: str) -> None:
    for key in data:
        if key not in allowed:
            raise ConfigError(file, str(key), f"unknown field; allowed: {sorted(allowed)}")


def _positive_int(value: Any, file: str, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(file, key, f"must be a positive integer, got {value!r}")
    return value


def check_parent(parent: dict[str, Any], file: str) -> dict[str, Any]:
    """Validated shared fields of a parent file (sessions not yet read)."""
    _unknown_keys(parent, PARENT_KEYS, file)
    for key in _REQUIRED:
        if key not in parent:
            raise ConfigError(file, key, f"required field missing ({PARENT_KEYS[key]})")
    types = parent["types"]
    if not isinstance(types, list) or not types:
        raise ConfigError(file, "types", f"must be a non-empty list from {list(STIM_TYPES)}")
    for t in types:
        if t not in STIM_TYPES:
            raise ConfigError(
                file, "types", f"unknown stimulus type {t!r}; allowed: {list(STIM_TYPES)}"
            )
    sessions = parent["sessions"]
    if not isinstance(sessions, list) or not sessions:
        raise ConfigError(file, "sessions", "must be a non-empty list of session names")
    if len(set(map(str, sessions))) != len(sessions):
        raise ConfigError(file, "sessions", "session names must be unique")
    split = parent["train_val_split"]
    if not isinstance(split, int | float) or not 0.0 < float(split) < 1.0:
        raise ConfigError(file, "train_val_split", f"must be a fraction in (0, 1), got {split!r}")
    seed = parent["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(file, "seed", f"must be a non-negative integer, got {seed!r}")
    rate = parent.get("frame_rate_hz", 120.0)
    if not isinstance(rate, int | float) or rate <= 0:
        raise ConfigError(file, "frame_rate_hz", f"must be a positive number, got {rate!r}")
    behavior_dim = parent["behavior_dim"]
    if isinstance(behavior_dim, bool) or not isinstance(behavior_dim, int) or behavior_dim < 0:
        raise ConfigError(file, "behavior_dim", f"must be an integer >= 0, got {behavior_dim!r}")
    return {
        "types": list(types),
        "sessions": [str(s) for s in sessions],
        "n_lags": _positive_int(parent["n_lags"], file, "n_lags"),
        "behavior_dim": behavior_dim,
        "train_val_split": float(split),
        "seed": seed,
        "frame_rate_hz": float(rate),
    }


def check_session(
    name: str, merged: dict[str, Any], own: dict[str, Any], file: str, common: dict[str, Any]
) -> dict[str, Any]:
    """Fields of one session (its own file merged over the parent's session defaults)."""
    _unknown_keys(own, SESSION_KEYS, file)
    if "session" in own and str(own["session"]) != name:
        raise ConfigError(file, "session", f"is {own['session']!r} but the file is for {name!r}")
    stim_type = merged.get("stim_type")
    if stim_type is None:
        raise ConfigError(
            file, "stim_type", f"missing (set it here or in the parent); one of {common['types']}"
        )
    if stim_type not in common["types"]:
        raise ConfigError(
            file, "stim_type", f"{stim_type!r} not in the parent's types {common['types']}"
        )
    if "n_units" not in merged:
        raise ConfigError(file, "n_units", "missing (set it here or in the parent)")
    n_units = _positive_int(merged["n_units"], file, "n_units")
    seed = merged.get("seed")
    if seed is None:
        seed = derived_seed(common["seed"], name)
    elif isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(file, "seed", f"must be a non-negative integer, got {seed!r}")
    synthetic = check_synthetic(merged.get("synthetic", {}), file)
    if synthetic["trial_frames"][0] <= common["n_lags"]:
        raise ConfigError(
            file, "synthetic.trial_frames", f"trials must be longer than n_lags={common['n_lags']}"
        )
    return {
        "name": name,
        "stim_type": stim_type,
        "n_units": n_units,
        "seed": seed,
        "synthetic": synthetic,
    }


def derived_seed(seed: int, name: str) -> int:
    """A per-session seed that differs between sessions but is stable across runs."""
    return (int(seed) * 1_000_003 + zlib.crc32(name.encode())) % (2**31 - 1)


def check_synthetic(block: Any, file: str, prefix: str = "synthetic") -> dict[str, Any]:
    """Resolve a ``synthetic:`` block against its preset, as a ``ConfigError`` on failure."""
    if not isinstance(block, dict):
        raise ConfigError(file, prefix, "must be a mapping (preset: NAME, field: value, ...)")
    try:
        return resolve_params(block)
    except ValueError as exc:
        key, message = exc.args
        raise ConfigError(file, f"{prefix}.{key}", message) from None
