"""Which trainer family a run belongs to: the one place that decides.

A config names its family with a top-level ``family:`` key (``video``); a config without
one is the V1 family (every config written before the second family existed). The model
and the dataset config of a run must agree: a ResNet3D cannot read spike recordings.
Pure (PyYAML only), so ``corejob submit``/``sweep`` classify runs exactly as the trainer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from trainer.configs import DATASETS, MODELS, available_configs, resolve_config
from trainer.contract.errors import ConfigError

V1, VIDEO = "v1", "video"
FAMILIES = (V1, VIDEO)
_FLAGS = {MODELS: "--model_config", DATASETS: "--dataset_configs_path"}


def read_yaml(path: Path, flag: str) -> dict[str, Any]:
    """A config file's top-level mapping, or one line naming the file."""
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "YAML"
        raise ConfigError(str(path), where, f"not valid YAML ({flag})") from None
    if not isinstance(data, dict):
        raise ConfigError(str(path), "(top level)", f"must be a mapping ({flag})")
    return data


def family_of(data: dict[str, Any], source: str) -> str:
    """The ``family`` a config's mapping declares (absent: ``v1``)."""
    family = data.get("family", V1)
    if family not in FAMILIES:
        raise ConfigError(source, "family", f"{family!r} unknown; allowed: {', '.join(FAMILIES)}")
    return str(family)


def config_family(kind: str, name_or_path: str | Path) -> str:
    """The family of one config argument (a bundled name or a path)."""
    path = resolve_config(kind, name_or_path)
    return family_of(read_yaml(path, _FLAGS[kind]), str(path))


def run_family(model_config: str | Path, dataset_config: str | Path) -> str:
    """The family of a run; its two configs must declare the same one."""
    model = config_family(MODELS, model_config)
    dataset = config_family(DATASETS, dataset_config)
    if model != dataset:
        raise ConfigError(
            "--dataset_configs_path",
            str(dataset_config),
            f"is a {dataset} dataset but --model_config {model_config} is a {model} model;"
            " pick a dataset of the same family (corejob list datasets)",
        )
    return model


def configs_of_family(kind: str, family: str) -> list[str]:
    """The bundled configs of ``kind`` that belong to ``family``."""
    return [name for name in available_configs(kind) if config_family(kind, name) == family]
