"""The ``regularization`` list of a model config: validated here, without torch.

Each entry is ``{name, type, lambda, apply_to, schedule}`` (VisionCore's vocabulary);
``trainer.optim.regularizers`` binds the specs to parameters and applies them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trainer.contract.errors import ConfigError

PENALTY_TYPES = ("l1", "l2", "group_lasso", "orthogonality")
PROXIMAL_TYPES = ("proximal_l1", "proximal_clamp", "proximal_clamp_positive", "proximal_clamp_min")
_TYPE_ALIASES = {"ortho": "orthogonality"}
SCHEDULE_KINDS = ("constant", "warmup", "linear_ramp", "linear_decay")


@dataclass(frozen=True)
class Schedule:
    """How a regularizer's strength varies with the epoch."""

    kind: str = "constant"
    start_epoch: int = 0
    end_epoch: int | None = None
    start_lambda: float | None = None

    def weight(self, lam: float, epoch: int) -> float:
        """Effective lambda at ``epoch`` (0-based)."""
        start, end = self.start_epoch, self.end_epoch
        if self.kind == "constant":
            return lam
        if self.kind == "warmup":
            active = epoch >= start and (end is None or epoch <= end)
            return lam if active else 0.0
        end = start if end is None else end
        progress = 1.0 if end <= start else min(1.0, max(0.0, (epoch - start) / (end - start)))
        if self.kind == "linear_ramp":
            return lam * progress if epoch >= start else 0.0
        first = lam if self.start_lambda is None else self.start_lambda  # linear_decay
        return first + progress * (lam - first)


@dataclass(frozen=True)
class RegularizerSpec:
    """One validated ``regularization`` entry."""

    name: str
    type: str
    lam: float
    apply_to: tuple[str, ...]
    schedule: Schedule = field(default_factory=Schedule)

    @property
    def is_proximal(self) -> bool:
        return self.type in PROXIMAL_TYPES


def parse_regularizer_specs(entries: Any, source: str = "model config") -> list[RegularizerSpec]:
    """Validate the YAML ``regularization`` list; errors name the entry and field."""
    if entries in (None, []):
        return []
    if not isinstance(entries, list):
        raise ConfigError(source, "regularization", "must be a list of {name, type, lambda, ...}")
    return [_parse_one(entry, i, source) for i, entry in enumerate(entries)]


def _parse_one(entry: Any, index: int, source: str) -> RegularizerSpec:
    key = f"regularization[{index}]"
    if not isinstance(entry, dict):
        raise ConfigError(source, key, f"must be a mapping, got {entry!r}")
    known = {"name", "type", "lambda", "apply_to", "schedule"}
    unknown = sorted(set(entry) - known)
    if unknown:
        raise ConfigError(source, f"{key}.{unknown[0]}", f"unknown field; allowed: {sorted(known)}")
    kind = _TYPE_ALIASES.get(entry.get("type"), entry.get("type"))
    if kind not in PENALTY_TYPES + PROXIMAL_TYPES:
        allowed = ", ".join(PENALTY_TYPES + PROXIMAL_TYPES)
        raise ConfigError(source, f"{key}.type", f"{entry.get('type')!r} is not one of: {allowed}")
    try:
        lam = float(entry["lambda"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(source, f"{key}.lambda", "required number") from None
    patterns = entry.get("apply_to")
    if isinstance(patterns, str):
        patterns = [patterns]
    if not patterns or not all(isinstance(p, str) and p for p in patterns):
        raise ConfigError(source, f"{key}.apply_to", "required non-empty list of name patterns")
    name = str(entry.get("name") or f"{kind}_{index}")
    return RegularizerSpec(name, kind, lam, tuple(patterns), _parse_schedule(entry, key, source))


def _parse_schedule(entry: dict, key: str, source: str) -> Schedule:
    raw = entry.get("schedule") or {"kind": "constant"}
    if isinstance(raw, str):
        raw = {"kind": raw}
    if not isinstance(raw, dict) or raw.get("kind", "constant") not in SCHEDULE_KINDS:
        got = raw.get("kind") if isinstance(raw, dict) else raw
        raise ConfigError(source, f"{key}.schedule.kind", f"{got!r} is not one of {SCHEDULE_KINDS}")
    unknown = sorted(set(raw) - {"kind", "start_epoch", "end_epoch", "start_lambda"})
    if unknown:
        raise ConfigError(source, f"{key}.schedule.{unknown[0]}", "unknown schedule field")
    end = raw.get("end_epoch")
    start_lambda = raw.get("start_lambda")
    return Schedule(
        kind=raw.get("kind", "constant"),
        start_epoch=int(raw.get("start_epoch", 0)),
        end_epoch=None if end is None else int(end),
        start_lambda=None if start_lambda is None else float(start_lambda),
    )
