"""``-m``/``-d`` paths → the chart's ``configFiles`` value (pure apart from reading the files).

A config argument is a bundled name or a path (``trainer.configs.is_config_path``, the
trainer's own rule). A bundled name stays a name: the image has it. A path names a file on
this machine: its text is shipped under its file name, and the chart's model/dataset value
becomes that file name, which the chart maps to the mounted copy. The job's identity then
depends on the file's name and content, not on where it lay: the same file is the same job
from any directory, and an edited file is a new job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corejob.errors import UsageError
from trainer.configs import DATASETS, MODELS, is_config_path, resolve_config
from trainer.contract.errors import ConfigError

# A ConfigMap (the whole object, as etcd stores it) holds at most 1 MiB.
MAX_TOTAL_BYTES = 1024 * 1024
# ConfigMap keys: letters, digits, '-', '_', '.'; not "." or "..".
CONFIGMAP_KEY = re.compile(r"[-._a-zA-Z0-9]*[-_a-zA-Z0-9][-._a-zA-Z0-9]*")
FLAGS = {MODELS: "-m/--model", DATASETS: "-d/--dataset"}


@dataclass(frozen=True)
class ShippedConfigs:
    """What the chart receives for one job's model and dataset."""

    model: str  # a bundled name, or the shipped file's name
    dataset: str
    files: dict[str, str] = field(default_factory=dict)  # configFiles: file name → text
    sources: dict[str, Path] = field(default_factory=dict)  # file name → the file read

    def chart_values(self) -> dict[str, Any]:
        """Values that replace the model/dataset flags; nothing when no file is shipped."""
        if not self.files:
            return {}
        return {"model": self.model, "dataset": self.dataset, "configFiles": dict(self.files)}


def ship_configs(model: str, dataset: str) -> ShippedConfigs:
    """Read every path among ``model``/``dataset``; one-line ``UsageError`` for a file that
    is missing, unreadable, not UTF-8, badly named for a ConfigMap key, or too large."""
    files: dict[str, str] = {}
    sources: dict[str, Path] = {}
    chart: dict[str, str] = {}
    for kind, reference in ((MODELS, model), (DATASETS, dataset)):
        if not is_config_path(reference):
            chart[kind] = reference
            continue
        path = _resolve(kind, reference)
        name, text = path.name, _read(path, kind)
        if name in files and files[name] != text:
            raise UsageError(
                f"{FLAGS[MODELS]} {model} and {FLAGS[DATASETS]} {dataset} are different files "
                f"with the same name {name!r}; they are shipped side by side: rename one"
            )
        files[name], sources[name], chart[kind] = text, path, name
    total = sum(len(text.encode()) for text in files.values())
    if total > MAX_TOTAL_BYTES:
        raise UsageError(
            f"config files {', '.join(map(str, sources.values()))} hold {total} bytes; a "
            f"ConfigMap holds at most {MAX_TOTAL_BYTES} (1 MiB): put big files in the image"
        )
    return ShippedConfigs(chart[MODELS], chart[DATASETS], files, sources)


def _resolve(kind: str, reference: str) -> Path:
    try:
        path = resolve_config(kind, Path(reference).expanduser())
    except ConfigError as error:
        raise UsageError(str(error)) from None
    if not CONFIGMAP_KEY.fullmatch(path.name) or len(path.name) > 253:
        raise UsageError(
            f"{FLAGS[kind]} {reference}: file name {path.name!r} cannot name a ConfigMap key "
            "(letters, digits, '-', '_' and '.' only): rename the file"
        )
    return path


def _read(path: Path, kind: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{FLAGS[kind]} {path}: not a UTF-8 text file") from None
    except OSError as error:
        raise UsageError(f"{FLAGS[kind]} {path}: cannot read it ({error.strerror})") from None
