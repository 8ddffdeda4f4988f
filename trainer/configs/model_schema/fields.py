"""Typed fields and the one value checker every model-config key goes through.

A ``Field`` says what one YAML key accepts (its kind, default, allowed values); ``check``
turns a raw YAML value into the resolved value or raises a one-line ``ConfigError`` that
names the file, the dotted key and what is allowed. Pure Python: the controller validates
model configs on a laptop without torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trainer.contract.errors import ConfigError

# Kinds: python scalar types, or one of these names.
SIZE = "size"  # an int or a list of ints (a kernel size, stride, padding...)
INTS = "ints"  # a list of ints
NUMBERS = "numbers"  # a list of numbers
MAPPING = "mapping"  # a free-form mapping passed through (e.g. window kwargs)
ANY = "any"  # accepted and passed through unchecked (VisionCore ignores it too)

_KIND_NAMES = {
    int: "int",
    float: "number",
    bool: "bool",
    str: "str",
    list: "list",
    SIZE: "int or list of ints",
    INTS: "list of ints",
    NUMBERS: "list of numbers",
    MAPPING: "mapping",
    ANY: "any value",
}


@dataclass(frozen=True)
class Field:
    """One accepted key: its kind, default and (optionally) the allowed values."""

    kind: Any
    default: Any = None
    choices: tuple[Any, ...] | None = None
    nullable: bool = False
    doc: str = ""
    minimum: float | None = 0

    def describe(self) -> str:
        """Human-readable type for error messages and the reference."""
        name = _KIND_NAMES[self.kind]
        if self.choices is not None:
            name = "one of " + ", ".join(str(c) for c in self.choices)
        return f"{name} or null" if self.nullable or self.default is None else name


def is_kind(value: Any, kind: Any) -> bool:
    """Whether ``value`` has ``kind`` (ints count as numbers; bools never as numbers)."""
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == SIZE:
        return is_kind(value, int) or (isinstance(value, list) and is_kind(value, INTS))
    if kind == INTS:
        return isinstance(value, list | tuple) and all(is_kind(v, int) for v in value)
    if kind == NUMBERS:
        return isinstance(value, list | tuple) and all(is_kind(v, float) for v in value)
    if kind == MAPPING:
        return isinstance(value, Mapping)
    if kind == ANY:
        return True
    return isinstance(value, kind)


def check(value: Any, spec: Field, source: str, key: str) -> Any:
    """The resolved value of one key, or a ``ConfigError`` naming ``source`` and ``key``."""
    if value is None:
        if spec.nullable or spec.default is None:
            return None
        raise ConfigError(source, key, f"must not be null; expected {spec.describe()}")
    if isinstance(value, str) and spec.choices is not None and spec.kind is str:
        value = value if value in spec.choices else value.lower()
    if not is_kind(value, spec.kind):
        raise ConfigError(source, key, f"expected {spec.describe()}, got {value!r}")
    if spec.choices is not None and value not in spec.choices:
        allowed = ", ".join(map(str, spec.choices))
        raise ConfigError(source, key, f"{value!r} not allowed; allowed: {allowed}")
    if spec.minimum is not None and spec.kind in (int, float) and value < spec.minimum:
        raise ConfigError(source, key, f"must be >= {spec.minimum:g}, got {value!r}")
    if spec.kind is float:
        return float(value)
    if spec.kind in (SIZE, INTS, NUMBERS, list) and isinstance(value, list | tuple):
        return list(value)
    if spec.kind == MAPPING:
        return dict(value)
    return value


def check_mapping(
    raw: Any, fields: Mapping[str, Field], source: str, key: str, what: str
) -> dict[str, Any]:
    """Validate a mapping against ``fields``: unknown keys are errors, defaults filled in."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(source, key or "<top>", f"expected a mapping, got {raw!r}")
    prefix = f"{key}." if key else ""
    for name in raw:
        if name not in fields:
            allowed = ", ".join(fields) or "(none)"
            raise ConfigError(
                source, f"{prefix}{name}", f"unknown field for {what}; allowed: {allowed}"
            )
    return {
        name: check(raw.get(name, f.default), f, source, prefix + name)
        for name, f in fields.items()
    }


def field_line(key: str, spec: Field) -> str:
    """One markdown bullet body for a key (the generated reference)."""
    doc = f" — {spec.doc}" if spec.doc else ""
    return f"`{key}`: {spec.describe()}, default `{spec.default!r}`{doc}"
