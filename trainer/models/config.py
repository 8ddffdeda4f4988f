"""Model configs: YAML in, a validated dict with every default filled in out.

The schema of each component's ``params`` lives in the component registry
(``trainer.models.registry``); this module only knows the top-level layout. The resolved
dict is what checkpoints embed, so a model rebuilds from it without the YAML file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from trainer.configs import MODELS, available_configs, config_dir, resolve_config
from trainer.contract.errors import ConfigError
from trainer.models import registry
from trainer.models.model import OUTPUT_ACTIVATIONS
from trainer.models.registry import Field

CONFIG_DIR = config_dir(MODELS)

# Top-level fields besides the components. ``regularization`` is a list of penalty specs
# validated by ``trainer.optim.regularizers``; ``weight_decay_exclude`` adds fnmatch patterns
# (on parameter names such as ``readouts.0.mean``) to the optimizer's no-decay set.
TOP_LEVEL: dict[str, Field] = {
    "name": Field(str, None, nullable=True, doc="defaults to the file name"),
    "model_type": Field(str, "v1multi", choices=("v1multi",)),
    "initial_input_channels": Field(int, 1),
    "sampling_rate": Field(int, None, nullable=True, doc="Hz; informational"),
    "output_activation": Field(
        str, "none", choices=OUTPUT_ACTIVATIONS, doc="none: output is a log-rate; softplus: a rate"
    ),
    "regularization": Field(
        list, [], item_kind=dict, doc="penalty specs (trainer.optim.regularizers)"
    ),
    "weight_decay_exclude": Field(
        list, [], item_kind=str, doc="fnmatch patterns on parameter names, e.g. readouts.*.features"
    ),
}
DEFAULT_TYPES = {
    "adapter": "none",
    "frontend": "none",
    "convnet": "none",
    "modulator": "none",
    "recurrent": "none",
    "readout": "gaussian",
}


def available_model_configs() -> list[str]:
    """Names of the bundled model configs."""
    return available_configs(MODELS)


def load_model_config(name_or_path: str | Path) -> dict[str, Any]:
    """Read, validate and resolve a model config (``ConfigError`` on any bad field)."""
    path = resolve_config(MODELS, name_or_path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "yaml"
        raise ConfigError(
            str(path), where, f"invalid YAML: {getattr(exc, 'problem', exc)}"
        ) from None
    return validate_model_config(raw, str(path))


def validate_model_config(raw: Any, source: str) -> dict[str, Any]:
    """Pure validation: raw YAML data -> resolved config dict."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(source, "<top>", f"expected a mapping, got {type(raw).__name__}")
    allowed = (*TOP_LEVEL, *registry.KINDS)
    for key in raw:
        if key not in allowed:
            raise ConfigError(source, str(key), f"unknown field; allowed: {', '.join(allowed)}")
    config = {
        key: check_value(raw.get(key, f.default), f, source, key) for key, f in TOP_LEVEL.items()
    }
    for kind in registry.KINDS:
        config[kind] = _validate_component(raw.get(kind, DEFAULT_TYPES[kind]), kind, source)
    _check_combination(config, source)
    if config["name"] is None:
        config["name"] = Path(source).stem
    return config


def _validate_component(spec: Any, kind: str, source: str) -> dict[str, Any]:
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, dict):
        raise ConfigError(
            source, kind, "expected a mapping with 'type' and 'params' (or a type name)"
        )
    extra = set(spec) - {"type", "params"}
    if extra:
        raise ConfigError(
            source, f"{kind}.{sorted(extra)[0]}", "unknown field; allowed: type, params"
        )
    names = registry.names(kind)
    name = spec.get("type", DEFAULT_TYPES[kind])
    if name not in names:
        raise ConfigError(
            source, f"{kind}.type", f"unknown {kind} {name!r}; allowed: {', '.join(names)}"
        )
    fields = registry.component(kind, name).fields
    params = spec.get("params") or {}
    if not isinstance(params, dict):
        raise ConfigError(source, f"{kind}.params", "expected a mapping")
    for key in params:
        if key not in fields:
            allowed = ", ".join(fields) or "(none)"
            raise ConfigError(
                source,
                f"{kind}.params.{key}",
                f"unknown field for {kind} {name!r}; allowed: {allowed}",
            )
    resolved = {
        key: check_value(params.get(key, f.default), f, source, f"{kind}.params.{key}")
        for key, f in fields.items()
    }
    return {"type": name, "params": resolved}


def check_value(value: Any, spec: Field, source: str, key: str) -> Any:
    """Type-check one value against its ``Field``; ints are accepted where floats are."""
    if value is None:
        if spec.nullable or spec.default is None:
            return None
        raise ConfigError(source, key, f"must not be null; expected {spec.describe()}")
    ok = _is_kind(value, spec.kind)
    if ok and spec.item_kind is not None:
        ok = all(_is_kind(v, spec.item_kind) for v in value)
    if not ok:
        raise ConfigError(source, key, f"expected {spec.describe()}, got {value!r}")
    if spec.choices is not None and value not in spec.choices:
        raise ConfigError(
            source, key, f"{value!r} not allowed; allowed: {', '.join(map(str, spec.choices))}"
        )
    if spec.kind in (int, float) and value < 0:
        raise ConfigError(source, key, f"must be >= 0, got {value!r}")
    if spec.kind is float:
        return float(value)
    return list(value) if spec.kind is list else value


def _is_kind(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _check_combination(config: dict[str, Any], source: str) -> None:
    """Component pairs that cannot work together, reported before any tensor is built."""
    has_vision = any(config[k]["type"] != "none" for k in ("adapter", "frontend", "convnet"))
    if has_vision:
        return
    if config["modulator"]["type"] != "concat":
        raise ConfigError(
            source,
            "modulator.type",
            "without a vision core (adapter, frontend, convnet all none) use 'concat'",
        )
    if config["readout"]["type"] != "linear":
        raise ConfigError(
            source,
            "readout.type",
            "without a vision core there is no space to sample; use 'linear'",
        )


def reference_markdown() -> str:
    """The config reference; ``trainer/configs/models/README.md`` is this text (tested)."""
    lines = [
        "# Model config reference",
        "",
        "Generated by `python -m trainer.models.config > trainer/configs/models/README.md`;",
        "a test fails when it is stale. A component is `{type: NAME, params: {...}}` (or just",
        "`NAME`); omitted params take the defaults below. Unknown names or fields are errors.",
        "",
        "## top level",
        "",
    ]
    lines += [f"- {registry.field_line(key, spec)}" for key, spec in TOP_LEVEL.items()]
    return "\n".join(lines + registry.reference_lines()) + "\n"


if __name__ == "__main__":
    print(reference_markdown(), end="")
