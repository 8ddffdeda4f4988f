"""The one model-config schema (VisionCore's vocabulary), shared by trainer and controller.

``load_model_config`` reads a YAML file (a bundled name or a path) and returns the resolved
config: every component ``{type, params}`` with all defaults filled in, nested conv blocks
included. The trainer builds from exactly this dict and embeds it in checkpoints; the
controller calls the same function before it submits anything. Nothing here imports torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from trainer.configs import MODELS, available_configs, resolve_config
from trainer.configs.model_schema.blocks import ACTIVATIONS
from trainer.configs.model_schema.components import (
    COMPONENTS,
    DEFAULT_TYPES,
    DOCS,
    KINDS,
    check_component,
)
from trainer.configs.model_schema.fields import ANY, MAPPING, Field, check, check_mapping
from trainer.configs.model_schema.fields import field_line as _field_line
from trainer.configs.model_schema.regularization import parse_regularizer_specs
from trainer.contract.errors import ConfigError

MODEL_TYPES = ("v1", "v1multi", "v1multi_history")
TOP_LEVEL: dict[str, Field] = {
    "name": Field(str, None, doc="defaults to the file name"),
    "model_type": Field(str, "v1multi", MODEL_TYPES, doc="v1: one session"),
    "initial_input_channels": Field(int, 1),
    "sampling_rate": Field(int, 240, doc="Hz; the da and temporal_basis frontends use it"),
    "height": Field(ANY, None, doc="accepted, unused (as in VisionCore)"),
    "width": Field(ANY, None, doc="accepted, unused (as in VisionCore)"),
    "output_activation": Field(
        str, "none", ACTIVATIONS, doc="none/identity: the output is a log-rate"
    ),
    "baseline": Field(MAPPING, {}, doc="per-session learned offset added after the activation"),
    "regularization": Field(list, [], doc="penalties and proximal steps (see below)"),
    "weight_decay_exclude": Field(
        list, [], doc="fnmatch patterns on parameter names, e.g. readouts.*.features"
    ),
}
BASELINE: dict[str, Field] = {
    "enabled": Field(bool, False),
    "activation": Field(str, "relu", ("relu", "softplus")),
    "init_value": Field(float, 0.001, minimum=None),
}
VISION_KINDS = ("adapter", "frontend", "convnet")


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
        problem = getattr(exc, "problem", exc)
        raise ConfigError(str(path), where, f"invalid YAML: {problem}") from None
    return validate_model_config(raw, str(path))


def validate_model_config(raw: Any, source: str) -> dict[str, Any]:
    """Pure validation: raw YAML data -> the resolved config dict."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(source, "<top>", f"expected a mapping, got {type(raw).__name__}")
    allowed = (*TOP_LEVEL, *KINDS)
    for key in raw:
        if key not in allowed:
            raise ConfigError(source, str(key), f"unknown field; allowed: {', '.join(allowed)}")
    config = {key: check(raw.get(key, f.default), f, source, key) for key, f in TOP_LEVEL.items()}
    config["baseline"] = check_mapping(config["baseline"], BASELINE, source, "baseline", "baseline")
    parse_regularizer_specs(config["regularization"], source)
    for pattern in config["weight_decay_exclude"]:
        if not isinstance(pattern, str):
            raise ConfigError(source, "weight_decay_exclude", f"expected strings, got {pattern!r}")
    for kind in KINDS:
        config[kind] = check_component(raw.get(kind), kind, source)
    _check_combination(config, source)
    if config["name"] is None:
        config["name"] = Path(source).stem
    return config


def has_vision(config: dict[str, Any]) -> bool:
    """False for a behaviour-only model (adapter, frontend and convnet all ``none``)."""
    return any(config[k]["type"] != "none" for k in VISION_KINDS)


def _check_combination(config: dict[str, Any], source: str) -> None:
    """Component pairs that cannot work together, reported before any tensor is built."""
    if has_vision(config):
        return
    if config["modulator"]["type"] not in ("concat", "convgru"):
        raise ConfigError(
            source,
            "modulator.type",
            "without a vision core (adapter, frontend, convnet all none) use 'concat' or 'convgru'",
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
        "Generated by `python -m trainer.configs.model_schema > trainer/configs/models/README.md`;",
        "a test fails when it is stale. The vocabulary is VisionCore's (github",
        "`Yates-Lab/VisionCore`): its `experiments/model_configs/*.yaml` load unchanged. A",
        "component is `{type: NAME, params: {...}}` (or just `NAME`); omitted params take the",
        "defaults below. Unknown names or fields are errors naming the file and key.",
        "",
        "## top level",
        "",
    ]
    lines += [f"- {_field_line(key, spec)}" for key, spec in TOP_LEVEL.items()]
    lines += ["", "`baseline`:", ""]
    lines += [f"- {_field_line(key, spec)}" for key, spec in BASELINE.items()]
    for kind in KINDS:
        lines += ["", f"## {kind}", ""]
        for name, fields in COMPONENTS[kind].items():
            doc = DOCS.get(kind, {}).get(name, "")
            default = " (default)" if DEFAULT_TYPES[kind] == name else ""
            lines.append(f"- **`{name}`**{default}" + (f" — {doc}" if doc else ""))
            lines += [f"  - {_field_line(key, spec)}" for key, spec in fields.items()]
    lines += _block_reference()
    return "\n".join(lines) + "\n"


def _block_reference() -> list[str]:
    from trainer.configs.model_schema import blocks

    lines = ["", "## conv blocks (stem_config, block_configs[i], the conv frontend)", ""]
    for title, fields in (
        ("block", blocks.BLOCK),
        ("conv_params", blocks.CONV_PARAMS),
        ("norm_params", blocks.NORM_PARAMS),
        ("act_params", blocks.ACT_PARAMS),
        ("pool_params", blocks.POOL_PARAMS),
    ):
        lines += [f"- **{title}**"]
        lines += [f"  - {_field_line(key, spec)}" for key, spec in fields.items()]
    return lines
