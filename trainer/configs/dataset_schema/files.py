"""Reading a dataset config: the parent YAML, each session's YAML deep-merged over it.

As VisionCore's ``load_dataset_configs``: every parent key except ``sessions`` and
``session_dir`` is the base of each session, the session's own file wins key by key
(nested mappings merge, anything else replaces). Unlike VisionCore, ``session_dir`` may be
left out (default: a folder named like the parent, next to it) and a session file without
``cids`` keeps every unit.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from trainer.configs import DATASETS, resolve_config
from trainer.configs.dataset_schema.fields import (
    PARENT_ONLY_KEYS,
    SESSION_FILE_KEYS,
    check_parent_only,
    check_session_fields,
)
from trainer.configs.dataset_schema.sections import unknown_keys
from trainer.contract.errors import ConfigError

# libyaml's safe loader when present: VisionCore's session files list hundreds of unit ids,
# and a dataset config reads twenty of them.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class SessionEntry:
    """One session: its name, its file and its merged, validated fields."""

    name: str
    file: Path
    fields: dict[str, Any]


@dataclass(frozen=True)
class DatasetFiles:
    """A parent file and its sessions, validated (no data read, no torch)."""

    path: Path
    parent: dict[str, Any]
    sessions: list[SessionEntry]

    @property
    def description(self) -> str:
        return str(self.parent.get("description", ""))


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
    """A YAML mapping, or a ``ConfigError`` naming the file (and the line when unparsable)."""
    try:
        data = yaml.load(path.read_text(), Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "yaml"
        raise ConfigError(
            str(path), where, f"not valid YAML ({str(exc).splitlines()[0]})"
        ) from None
    except OSError as exc:
        raise ConfigError(str(path), "file", f"cannot be read ({exc.strerror})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), "<top level>", "must be a mapping of field: value")
    return data


def session_dir_of(path: Path, parent: dict[str, Any]) -> Path:
    folder = Path(parent.get("session_dir", path.stem)).expanduser()
    return folder if folder.is_absolute() else path.parent / folder


def load_dataset_files(name_or_path: str | Path, max_datasets: int | None = None) -> DatasetFiles:
    """Read, merge and validate a dataset config (first ``max_datasets`` sessions)."""
    path = resolve_config(DATASETS, name_or_path)
    parent = read_yaml(path)
    names = check_parent_only(parent, str(path))
    if max_datasets is not None:
        if max_datasets < 1:
            raise ConfigError("--max_datasets", "max_datasets", f"must be >= 1, got {max_datasets}")
        names = names[:max_datasets]
    folder = session_dir_of(path, parent)
    base = {k: v for k, v in parent.items() if k not in PARENT_ONLY_KEYS}
    sessions = []
    for name in names:
        file = folder / f"{name}.yaml"
        if not file.is_file():
            raise ConfigError(
                str(path),
                "sessions",
                f"session file {file} not found; create it or remove {name!r}",
            )
        own = read_yaml(file)
        unknown_keys(own, SESSION_FILE_KEYS, str(file))
        fields = check_session_fields(
            deep_merge(base, own),
            name,
            lambda key, own=own, file=file: str(file if key in own else path),
        )
        sessions.append(SessionEntry(name, file, fields))
    return DatasetFiles(path, parent, sessions)
