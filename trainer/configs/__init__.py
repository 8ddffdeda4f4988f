"""The bundled model and dataset configs, and the one rule for what a config argument means.

A config argument is either a bundled name (``res_small`` → ``configs/models/res_small.yaml``)
or a path to a YAML file (anything with a ``/`` or a ``.yaml``/``.yml`` suffix). The trainer
resolves ``--model_config`` / ``--dataset_configs_path`` with :func:`resolve_config`; the
controller checks names with the same function before it submits anything, so a typo fails
on the laptop in one line instead of in a pod. Importing this imports nothing heavy.
"""

from __future__ import annotations

from pathlib import Path

from trainer.contract.errors import ConfigError

CONFIGS_DIR = Path(__file__).resolve().parent
MODELS, DATASETS = "models", "datasets"
_FLAGS = {MODELS: "--model_config", DATASETS: "--dataset_configs_path"}
_NOUNS = {MODELS: "model config", DATASETS: "dataset config"}


def config_dir(kind: str) -> Path:
    """``configs/models`` or ``configs/datasets``."""
    if kind not in _FLAGS:
        raise ValueError(f"unknown config kind {kind!r}; use {MODELS!r} or {DATASETS!r}")
    return CONFIGS_DIR / kind


def available_configs(kind: str) -> list[str]:
    """Names of the bundled configs of ``kind``."""
    return sorted(path.stem for path in config_dir(kind).glob("*.yaml"))


def is_config_path(name_or_path: str | Path) -> bool:
    """True for a path (a ``/`` or a YAML suffix), False for a bundled config's name."""
    text = str(name_or_path)
    return "/" in text or text.endswith((".yaml", ".yml"))


def resolve_config(kind: str, name_or_path: str | Path) -> Path:
    """The YAML file a config argument names; ``ConfigError`` naming flag and value if none."""
    flag = _FLAGS[kind] if kind in _FLAGS else config_dir(kind).name
    if is_config_path(name_or_path):
        path = Path(name_or_path)
        if not path.is_file():
            raise ConfigError(flag, str(name_or_path), "file not found; check the path")
        return path.resolve()
    bundled = config_dir(kind) / f"{name_or_path}.yaml"
    if not bundled.is_file():
        choices = ", ".join(available_configs(kind)) or "(none)"
        raise ConfigError(flag, str(name_or_path), f"unknown {_NOUNS[kind]}; available: {choices}")
    return bundled
