"""Dataset configs: a parent YAML listing sessions, each deep-merged with its own YAML file.

Layout (as in VisionCore): ``configs/datasets/NAME.yaml`` holds what all sessions share
(stimulus types, lags, split, seed, generator preset) and ``sessions: [...]``; each session
has ``<session_dir>/<session>.yaml`` (``session_dir`` defaults to ``NAME``, relative to the
parent file) whose fields are deep-merged over the parent's session defaults. Everything is
validated here so that a bad field fails at load time as one line naming file and key.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trainer.configs import DATASETS, config_dir, resolve_config
from trainer.contract.errors import ConfigError
from trainer.data.config_checks import check_parent, check_session
from trainer.synthetic.presets import GENERATOR_VERSION

CONFIG_DIR = config_dir(DATASETS)
DEFAULT_DATA_ROOT = "data"

_SESSION_DEFAULT_KEYS = ("stim_type", "n_units", "synthetic")


@dataclass(frozen=True)
class SessionConfig:
    """One session after the merge: everything needed to generate and load it."""

    name: str
    stim_type: str
    n_units: int
    seed: int
    synthetic: dict[str, Any]
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "stim_type": self.stim_type,
            "n_units": self.n_units,
            "seed": self.seed,
            "synthetic": copy.deepcopy(self.synthetic),
        }


@dataclass(frozen=True)
class DatasetConfig:
    """A resolved dataset config; ``to_dict()``/``from_dict()`` round-trip via checkpoints."""

    name: str
    sessions: list[SessionConfig]
    types: list[str]
    n_lags: int
    behavior_dim: int
    frame_rate_hz: float
    train_val_split: float
    seed: int
    data_root: Path
    source: str = ""
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def session_dir(self, session: SessionConfig) -> Path:
        """Where a session's arrays live: named by a hash of everything that shapes them."""
        spec = {
            **session.to_dict(),
            "n_lags": self.n_lags,
            "behavior_dim": self.behavior_dim,
            "frame_rate_hz": self.frame_rate_hz,
            "generator_version": GENERATOR_VERSION,
        }
        digest = hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:10]
        return self.data_root / "synthetic" / f"{session.name}-{digest}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "description": self.description,
            "types": list(self.types),
            "n_lags": self.n_lags,
            "behavior_dim": self.behavior_dim,
            "frame_rate_hz": self.frame_rate_hz,
            "train_val_split": self.train_val_split,
            "seed": self.seed,
            "data_root": str(self.data_root),
            "sessions": [s.to_dict() for s in self.sessions],
            **copy.deepcopy(self.extra),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], data_root: str | Path | None = None) -> DatasetConfig:
        """Rebuild from ``to_dict()`` output (e.g. embedded in a checkpoint)."""
        sessions = [SessionConfig(**s, source="<checkpoint>") for s in d["sessions"]]
        root = Path(data_root) if data_root is not None else Path(d["data_root"])
        return cls(
            name=d["name"],
            sessions=sessions,
            types=list(d["types"]),
            n_lags=int(d["n_lags"]),
            behavior_dim=int(d["behavior_dim"]),
            frame_rate_hz=float(d["frame_rate_hz"]),
            train_val_split=float(d["train_val_split"]),
            seed=int(d["seed"]),
            data_root=root.resolve(),
            source=d.get("source", ""),
            description=d.get("description", ""),
            extra={k: d[k] for k in ("augmentation",) if k in d},
        )


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``: nested dicts merge key by key, anything else replaces."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(
            str(path), "yaml", f"not valid YAML ({str(exc).splitlines()[0]})"
        ) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), "<top level>", "must be a mapping of field: value")
    return data


def load_dataset_config(
    name_or_path: str | Path,
    data_root: str | Path | None = None,
    max_datasets: int | None = None,
) -> DatasetConfig:
    """Load, merge and validate a dataset config (see module docstring)."""
    path = resolve_config(DATASETS, name_or_path)
    parent = read_yaml(path)
    src = str(path)
    common = check_parent(parent, src)
    names = common["sessions"]
    if max_datasets is not None:
        if max_datasets < 1:
            raise ConfigError("--max_datasets", "max_datasets", f"must be >= 1, got {max_datasets}")
        names = names[:max_datasets]
    session_dir = path.parent / parent.get("session_dir", path.stem)
    defaults = {k: parent[k] for k in _SESSION_DEFAULT_KEYS if k in parent}
    sessions = []
    for name in names:
        file = session_dir / f"{name}.yaml"
        if not file.is_file():
            raise ConfigError(
                src, "sessions", f"session file {file} not found; create it or remove {name!r}"
            )
        own = read_yaml(file)
        fields = check_session(name, deep_merge(defaults, own), own, str(file), common)
        sessions.append(SessionConfig(**fields, source=str(file)))
    root = data_root if data_root is not None else parent.get("data_root") or DEFAULT_DATA_ROOT
    return DatasetConfig(
        name=path.stem,
        sessions=sessions,
        types=common["types"],
        n_lags=common["n_lags"],
        behavior_dim=common["behavior_dim"],
        frame_rate_hz=common["frame_rate_hz"],
        train_val_split=common["train_val_split"],
        seed=common["seed"],
        data_root=Path(root).expanduser().resolve(),
        source=src,
        description=str(parent.get("description", "")),
        extra=_extra_sections(parent, src),
    )


def _extra_sections(parent: dict[str, Any], source: str) -> dict[str, Any]:
    """Sections validated by their own modules (``augmentation``: ``trainer.data.augment``)."""
    if "augmentation" not in parent:
        return {}
    from trainer.data.augment import AugmentationConfig

    AugmentationConfig.from_dict(parent["augmentation"], source)
    return {"augmentation": copy.deepcopy(parent["augmentation"])}
