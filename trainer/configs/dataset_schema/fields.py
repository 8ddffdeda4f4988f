"""The keys of a dataset config's parent file and of its per-session files.

VisionCore's dialect (``models/config_loader.py``, ``models/data/loading.py``) plus
corejob's own keys. A session file is deep-merged over the parent, so it may override any
parent key that shapes a session (VisionCore allows the same); the keys that list or place
sessions stay in the parent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trainer.configs.dataset_schema.sections import (
    check_datafilters,
    check_keys_lags,
    check_sampling,
    check_transforms,
    merged_keys_lags,
    unknown_keys,
)
from trainer.configs.dataset_schema.synthetic import check_synthetic_block
from trainer.contract.errors import ConfigError

# Keys only a parent file may hold: which sessions, where their files are.
PARENT_ONLY_KEYS = {
    "sessions": "list of session names (one <session_dir>/<name>.yaml each)",
    "session_dir": "folder of per-session files, relative to the parent (default: its name)",
    "description": "free text",
    "data_root": "folder of the raw sessions (overridden by --data_root)",
    "family": "trainer family: v1 (the default) for these configs",
}
# Keys that shape a session: set in the parent, overridable per session (deep merge).
SHARED_KEYS = {
    "types": "stimulus types of each session, concatenated in time in this order",
    "sampling": "source_rate, target_rate (robs summed, stim decimated, others averaged)",
    "keys_lags": "sample key: lag or list of lags (index 0 of a lag axis = first listed lag)",
    "transforms": "name: {source, ops, expose_as, concatenate, keys_lags}",
    "datafilters": "name: {ops, expose_as, keys_lags}; AND-combined into the mask",
    "train_val_split": "fraction of trials for training, in (0, 1); split by whole trials",
    "seed": "seed of the trial split (default 1002, as VisionCore)",
    "synthetic": "generator block (preset, n_units, ...): the session is simulated",
    "augmentation": "training-time stimulus augmentation (trainer/data/augment.py)",
}
# VisionCore's per-session keys (its session YAMLs): ``cids`` picks the units.
SESSION_KEYS = {
    "session": "the session's name (must match the file name)",
    "cids": "unit ids kept (robs columns, readout size); default: every unit",
    "visual": "visually responsive unit ids (kept for reference)",
    "qcmissing": "unit ids that failed the missing-spikes check (kept for reference)",
    "qccontam": "unit ids that failed the contamination check (kept for reference)",
    "lab": "lab of the recording (yates, rowley)",
    "eye": "eye of the recording (rowley sessions: left, right)",
    "cidsqc": "unit ids that passed quality control (kept for reference)",
    "cids_qc": "unit ids that passed quality control (kept for reference; older spelling)",
    "snr": "signal-to-noise threshold the unit selection used (kept for reference)",
    "missingth": "missing-spikes threshold (%) the unit selection used (kept for reference)",
    "contamth": "contamination threshold (%) the unit selection used (kept for reference)",
    "directory": "VisionCore's folder of the session's datasets (not used: see data_root)",
}
PARENT_KEYS = {**PARENT_ONLY_KEYS, **SHARED_KEYS, **SESSION_KEYS}
SESSION_FILE_KEYS = {**SHARED_KEYS, **SESSION_KEYS}
REQUIRED = ("types", "keys_lags", "train_val_split")
DEFAULT_SEED = 1002
_UNIT_LISTS = ("cids", "visual", "qcmissing", "qccontam", "cidsqc", "cids_qc")
_THRESHOLDS = ("snr", "missingth", "contamth")


def check_parent_only(parent: dict[str, Any], file: str) -> list[str]:
    """The parent's own keys; returns the session names."""
    unknown_keys(parent, PARENT_KEYS, file)
    sessions = parent.get("sessions")
    if not isinstance(sessions, list) or not sessions:
        raise ConfigError(file, "sessions", "required: a non-empty list of session names")
    names = [str(s) for s in sessions]
    if len(set(names)) != len(names):
        raise ConfigError(file, "sessions", "session names must be unique")
    for key in ("session_dir", "description", "data_root"):
        if key in parent and not isinstance(parent[key], str):
            raise ConfigError(file, key, f"must be a string, got {parent[key]!r}")
    return names


def check_session_fields(
    merged: dict[str, Any], name: str, file_of: Callable[[str], str]
) -> dict[str, Any]:
    """One session's merged config in canonical form (see :data:`SHARED_KEYS`).

    ``file_of(key)`` is the file a top-level key came from (the session file when it sets
    the key, else the parent), so every error names the file to fix.
    """
    for key in REQUIRED:
        if key not in merged:
            desc = SHARED_KEYS[key]
            raise ConfigError(file_of(key), key, f"required ({desc}); set it in the parent or here")
    if "session" in merged and str(merged["session"]) != name:
        raise ConfigError(
            file_of("session"), "session", f"is {merged['session']!r} but the file is for {name!r}"
        )
    types = merged["types"]
    if not isinstance(types, list) or not types or not all(isinstance(t, str) for t in types):
        raise ConfigError(
            file_of("types"), "types", f"must be a non-empty list of type names, got {types!r}"
        )
    if len(set(types)) != len(types):
        raise ConfigError(file_of("types"), "types", f"types must be distinct, got {types}")
    transforms = check_transforms(merged.get("transforms"), file_of("transforms"))
    datafilters = check_datafilters(merged.get("datafilters"), file_of("datafilters"))
    lags = check_keys_lags(merged["keys_lags"], file_of("keys_lags"))
    fields = {
        "session": name,
        "types": list(types),
        "sampling": check_sampling(merged.get("sampling"), file_of("sampling")),
        "keys_lags": merged_keys_lags(lags, transforms, datafilters),
        "transforms": transforms,
        "datafilters": datafilters,
        "train_val_split": _fraction(merged["train_val_split"], file_of("train_val_split")),
        "seed": _seed(merged.get("seed", DEFAULT_SEED), file_of("seed")),
        "lab": _text(merged, "lab", "yates", file_of("lab")),
        "eye": _text(merged, "eye", "right", file_of("eye")),
    }
    for key in _UNIT_LISTS:
        if key in merged:
            fields[key] = _unit_ids(merged[key], file_of(key), key)
    for key in _THRESHOLDS:
        if key in merged and (
            isinstance(merged[key], bool) or not isinstance(merged[key], int | float)
        ):
            raise ConfigError(file_of(key), key, f"must be a number, got {merged[key]!r}")
    for key in ("synthetic", "augmentation"):
        if key in merged:
            if not isinstance(merged[key], dict):
                raise ConfigError(file_of(key), key, f"must be a mapping, got {merged[key]!r}")
            fields[key] = merged[key]
    if "synthetic" in fields:
        check_synthetic_block(fields["synthetic"], file_of("synthetic"))
    _check_exposed(fields, file_of("keys_lags"), file_of("datafilters"))
    return fields


def _check_exposed(fields: dict[str, Any], file: str, filters_file: str) -> None:
    """Every lagged key is something a session has: robs, a transform's or a datafilter's
    result, or a raw covariate kept as it is (VisionCore gathers raw keys too)."""
    exposed = {spec["expose_as"] for spec in fields["transforms"].values()}
    exposed |= {spec["expose_as"] for spec in fields["datafilters"].values()}
    if "dfs" not in exposed and not fields["datafilters"]:
        exposed.add("dfs")  # no datafilters: every bin of a trial is valid
    if "dfs" not in exposed:
        raise ConfigError(
            filters_file, "datafilters", "no datafilter has expose_as: dfs (the sample mask)"
        )
    for key in fields["keys_lags"]:
        if key in exposed or key in RAW_SAMPLE_KEYS:
            continue
        raise ConfigError(
            file,
            f"keys_lags.{key}",
            f"nothing exposes {key!r}: add a transform with expose_as: {key}, or use one of "
            f"{sorted(exposed | set(RAW_SAMPLE_KEYS))}",
        )


# Raw covariates a sample may carry untransformed (``trainer.recordings.REQUIRED_COVARIATES``).
RAW_SAMPLE_KEYS = ("robs", "stim", "eyepos", "dpi_valid", "trial_inds", "t_bins")


def _fraction(value: Any, file: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise ConfigError(file, "train_val_split", f"must be a fraction in (0, 1), got {value!r}")
    return float(value)


def _seed(value: Any, file: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(file, "seed", f"must be a non-negative integer, got {value!r}")
    return value


def _text(merged: dict[str, Any], key: str, default: str, file: str) -> str:
    value = merged.get(key, default)
    if not isinstance(value, str):
        raise ConfigError(file, key, f"must be a string, got {value!r}")
    return value


def _unit_ids(value: Any, file: str, key: str) -> list[int]:
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
    ):
        raise ConfigError(file, key, f"must be a list of unit ids (integers >= 0), got {value!r}")
    if key == "cids" and (not value or len(set(value)) != len(value)):
        raise ConfigError(file, key, "must be a non-empty list of distinct unit ids")
    return list(value)
