"""The one registry of model components and their parameter schemas.

Every component kind (adapter, frontend, convnet, modulator, recurrent, readout) maps
names to a builder plus the schema of its ``params``. The config loader validates YAML
against these schemas and the model builder calls the builders, so a component's
accepted fields are declared exactly once, next to the code that uses them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

KINDS = ("adapter", "frontend", "convnet", "modulator", "recurrent", "readout")

_TYPE_NAMES = {int: "int", float: "float", bool: "bool", str: "str", list: "list", dict: "dict"}


@dataclass(frozen=True)
class Field:
    """One accepted parameter: its type, default, and (optionally) the allowed values."""

    kind: type
    default: Any
    choices: tuple[Any, ...] | None = None
    nullable: bool = False
    item_kind: type | None = None  # element type for lists
    doc: str = ""

    def describe(self) -> str:
        """Human-readable type, used in error messages."""
        name = _TYPE_NAMES[self.kind]
        if self.item_kind is not None:
            name = f"list of {_TYPE_NAMES[self.item_kind]}"
        if self.choices is not None:
            name = "one of " + ", ".join(repr(c) for c in self.choices)
        return f"{name} or null" if self.nullable else name


@dataclass(frozen=True)
class BuildContext:
    """What a builder knows about its input: channel count and the sessions' shapes.

    ``source`` names the model config in error messages; ``n_units`` and ``spatial``
    (the core's output height and width) are set only when building a readout.
    """

    in_channels: int
    n_lags: int
    behavior_dim: int
    has_vision: bool
    source: str = "model config"
    n_units: int = 0
    spatial: tuple[int, int] = (1, 1)


@dataclass(frozen=True)
class Component:
    """A registered component: ``build(params, ctx) -> (module | None, out_channels)``."""

    kind: str
    name: str
    build: Callable[[dict[str, Any], BuildContext], tuple[nn.Module | None, int]]
    fields: dict[str, Field] = field(default_factory=dict)
    doc: str = ""


_REGISTRY: dict[str, dict[str, Component]] = {kind: {} for kind in KINDS}


def register(kind: str, name: str, fields: dict[str, Field] | None = None, doc: str = ""):
    """Decorator registering ``build`` as component ``name`` of ``kind``."""
    if kind not in _REGISTRY:
        raise ValueError(f"unknown component kind {kind!r}; kinds: {', '.join(KINDS)}")

    def decorate(build):
        if name in _REGISTRY[kind]:
            raise ValueError(f"{kind} component {name!r} registered twice")
        _REGISTRY[kind][name] = Component(kind, name, build, dict(fields or {}), doc)
        return build

    return decorate


def component(kind: str, name: str) -> Component:
    """The registered component; ``KeyError`` if unknown (the loader reports it nicely)."""
    _ensure_loaded()
    return _REGISTRY[kind][name]


def names(kind: str) -> tuple[str, ...]:
    """Registered names of ``kind``, sorted (for error messages and docs)."""
    _ensure_loaded()
    return tuple(sorted(_REGISTRY[kind]))


def _ensure_loaded() -> None:
    """Import the component modules so that their ``register`` calls have run."""
    from trainer.models import components  # noqa: F401


def reference_lines() -> list[str]:
    """Markdown lines describing every component and its params (for the config README)."""
    _ensure_loaded()
    lines: list[str] = []
    for kind in KINDS:
        lines += ["", f"## {kind}", ""]
        for name in names(kind):
            comp = _REGISTRY[kind][name]
            lines.append(f"- **`{name}`** — {comp.doc}")
            lines += [f"  - {field_line(key, spec)}" for key, spec in comp.fields.items()]
    return lines


def field_line(key: str, spec: Field) -> str:
    """One markdown bullet body for a parameter."""
    doc = f" — {spec.doc}" if spec.doc else ""
    return f"`{key}`: {spec.describe()}, default `{spec.default!r}`{doc}"
