"""Value types of the trainer's flags (argparse ``type=``), one definition for every parser.

The chart renders these flags (docs/CONTRACT.md); a value out of range is argparse's usage
error (exit 2) naming the flag, before anything loads.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def _checked(name: str, kind: type, ok: Callable[[Any], bool], rule: str) -> Callable[[str], Any]:
    """An argparse ``type``: ``kind(text)`` (argparse reports a ValueError as "invalid
    NAME value") that must satisfy ``ok``, else ``rule`` (formatted with the value)."""

    def parse(text: str) -> Any:
        value = kind(text)
        if not ok(value):
            raise argparse.ArgumentTypeError(rule.format(value=value, text=text))
        return value

    parse.__name__ = parse.__qualname__ = name
    return parse


positive_int = _checked("positive_int", int, lambda v: v >= 1, "{value} must be >= 1")
non_negative_int = _checked("non_negative_int", int, lambda v: v >= 0, "{value} must be >= 0")
non_negative_float = _checked("non_negative_float", float, lambda v: v >= 0, "{value} must be >= 0")
at_least_one = _checked("at_least_one", float, lambda v: v >= 1, "{value} must be >= 1")
fraction = _checked(
    "fraction", float, lambda v: 0.0 < v <= 1.0, "must be a fraction in (0, 1], got {text}"
)
