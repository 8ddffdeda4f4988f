"""``-m``/``-d`` paths → the chart's ``configFiles`` value (pure apart from reading the files).

A config argument is a bundled name or a path (``trainer.configs.is_config_path``, the
trainer's own rule). A bundled name stays a name: the image has it. A path names a file on
this machine: its text is shipped under its file name, and the chart's model/dataset value
becomes that file name, which the chart maps to the mounted copy. A dataset config brings
its session files (``<session_dir>/<session>.yaml`` next to it, as the trainer reads them:
``trainer/data/config.py``), shipped at the same relative paths. The job's identity then
depends on the files' names and content, not on where they lay: the same file is the same
job from any directory, and an edited file is a new job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from corejob.errors import UsageError
from trainer.configs import DATASETS, MODELS, is_config_path, resolve_config
from trainer.contract.errors import ConfigError

# A ConfigMap (the whole object, as etcd stores it) holds at most 1 MiB.
MAX_TOTAL_BYTES = 1024 * 1024
# A path segment must be usable in a ConfigMap key: letters, digits, '-', '_', '.'; not "."
# or "..". (The chart stores "a/b.yaml" under the key "a--b.yaml".)
SEGMENT = re.compile(r"[-._a-zA-Z0-9]*[-_a-zA-Z0-9][-._a-zA-Z0-9]*")
FLAGS = {MODELS: "-m/--model", DATASETS: "-d/--dataset"}


@dataclass(frozen=True)
class ShippedConfigs:
    """What the chart receives for one job's model and dataset."""

    model: str  # a bundled name, or the shipped file's name
    dataset: str
    files: dict[str, str] = field(default_factory=dict)  # configFiles: path → text
    sources: dict[str, Path] = field(default_factory=dict)  # path → the file read

    def chart_values(self) -> dict[str, Any]:
        """Values that replace the model/dataset flags; nothing when no file is shipped."""
        if not self.files:
            return {}
        return {"model": self.model, "dataset": self.dataset, "configFiles": dict(self.files)}


def ship_configs(model: str, dataset: str) -> ShippedConfigs:
    """Read every path among ``model``/``dataset`` (and a dataset's session files);
    one-line ``UsageError`` for a file that is missing, unreadable, not UTF-8, badly named
    for a ConfigMap key, clashing with another of the same name, or too large."""
    shipped = ShippedConfigs(model, dataset)
    chart: dict[str, str] = {}
    for kind, reference in ((MODELS, model), (DATASETS, dataset)):
        if not is_config_path(reference):
            chart[kind] = reference
            continue
        path = _resolve(kind, reference)
        text = _read(path, kind)
        _add(shipped, path.name, path, text, kind)
        chart[kind] = path.name
        if kind == DATASETS:
            for relative, session in _session_files(path, text).items():
                _add(shipped, relative, session, _read(session, kind), kind)
    total = sum(len(text.encode()) for text in shipped.files.values())
    if total > MAX_TOTAL_BYTES:
        raise UsageError(
            f"config files {', '.join(map(str, shipped.sources.values()))} hold {total} "
            f"bytes; a ConfigMap holds at most {MAX_TOTAL_BYTES} (1 MiB): put big files in "
            "the image"
        )
    return ShippedConfigs(chart[MODELS], chart[DATASETS], shipped.files, shipped.sources)


def _add(shipped: ShippedConfigs, relative: str, path: Path, text: str, kind: str) -> None:
    if not all(SEGMENT.fullmatch(part) for part in relative.split("/")) or len(relative) > 250:
        raise UsageError(
            f"{FLAGS[kind]}: file name {relative!r} ({path}) cannot name a ConfigMap key "
            "(letters, digits, '-', '_' and '.' only): rename the file"
        )
    if relative in shipped.files and shipped.files[relative] != text:
        raise UsageError(
            f"{shipped.sources[relative]} and {path} are different files with the same name "
            f"{relative!r}; they are shipped side by side: rename one"
        )
    shipped.files[relative], shipped.sources[relative] = text, path


def _session_files(path: Path, text: str) -> dict[str, Path]:
    """A dataset config's session files: path relative to it → file (the trainer's layout:
    ``<session_dir>/<session>.yaml``, ``session_dir`` defaulting to the file's stem)."""
    try:
        parent = yaml.safe_load(text)
    except yaml.YAMLError as error:
        problem = " ".join(str(error).split())
        raise UsageError(f"{FLAGS[DATASETS]} {path}: invalid YAML: {problem}") from None
    if not isinstance(parent, dict) or not isinstance(parent.get("sessions"), list):
        return {}  # nothing to ship besides it; the trainer names what is wrong
    session_dir = PurePosixPath(str(parent.get("session_dir", path.stem)))
    if session_dir.is_absolute() or ".." in session_dir.parts:
        raise UsageError(
            f"{FLAGS[DATASETS]} {path}: session_dir {str(session_dir)!r} is outside the "
            "dataset config's directory; only files next to it are shipped: move them there"
        )
    files = {}
    for session in parent["sessions"]:
        relative = str(session_dir / f"{session}.yaml")
        file = path.parent / relative
        if not file.is_file():
            raise UsageError(
                f"{FLAGS[DATASETS]} {path}: session file {file} not found; create it or "
                f"remove {session!r} from sessions"
            )
        files[relative] = file
    return files


def _resolve(kind: str, reference: str) -> Path:
    try:
        return resolve_config(kind, Path(reference).expanduser())
    except ConfigError as error:
        raise UsageError(str(error)) from None


def _read(path: Path, kind: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{FLAGS[kind]} {path}: not a UTF-8 text file") from None
    except OSError as error:
        raise UsageError(f"{FLAGS[kind]} {path}: cannot read it ({error.strerror})") from None
