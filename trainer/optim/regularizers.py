"""Regularizers declared in the model YAML: loss penalties and proximal steps.

A model config may carry a ``regularization`` list; each entry is
``{name, type, lambda, apply_to, schedule}``:

- ``type``: a loss penalty added to the training loss (``l1``, ``l2``, ``group_lasso``,
  ``orthogonality``) or a proximal operator applied to the weights right after each
  optimizer step (``proximal_l1``, ``proximal_clamp``, ``proximal_clamp_positive``,
  ``proximal_clamp_min``). Proximal steps keep exact zeros / hard bounds that a gradient
  penalty only approaches.
- ``apply_to``: parameter-name patterns; a pattern ``"readouts/features"`` matches names
  containing *all* of its ``/``-separated parts. A regularizer that matches nothing is a
  config error (a silent no-op regularizer is the worst kind of typo).
- ``schedule``: ``{kind: constant|warmup|linear_ramp|linear_decay, start_epoch, end_epoch,
  start_lambda}`` scales ``lambda`` per epoch.

Frozen parameters (``requires_grad`` false) are never touched by proximal steps: a frozen
core must stay bit-identical.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

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


def name_matches(param_name: str, patterns: Iterable[str]) -> bool:
    """True if some pattern has all of its ``/``-separated parts inside ``param_name``."""
    return any(all(part in param_name for part in p.split("/")) for p in patterns)


class Regularizer:
    """A spec bound to the parameters it matched."""

    def __init__(self, spec: RegularizerSpec, named_params: Sequence[tuple[str, torch.Tensor]]):
        self.spec = spec
        matched = [(n, p) for n, p in named_params if name_matches(n, spec.apply_to)]
        self.param_names = [n for n, _ in matched]
        self.params = [p for _, p in matched]

    def penalty(self, epoch: int) -> torch.Tensor | None:
        """The loss term at ``epoch``, or None for proximal types / zero strength."""
        lam = self.spec.schedule.weight(self.spec.lam, epoch)
        if self.spec.is_proximal or lam == 0.0:
            return None
        terms = [_penalty_term(self.spec.type, p) for p in self.params]
        return lam * torch.stack(terms).sum()

    @torch.no_grad()
    def apply_proximal(self, epoch: int, optimizer: torch.optim.Optimizer | None) -> None:
        """Apply the proximal operator in place (after the optimizer step)."""
        lam = self.spec.schedule.weight(self.spec.lam, epoch)
        if not self.spec.is_proximal or lam == 0.0:
            return
        for p in self.params:
            if p.requires_grad:
                _proximal_update(self.spec.type, p, lam, optimizer)


def _penalty_term(kind: str, p: torch.Tensor) -> torch.Tensor:
    if kind == "l1":
        return p.abs().sum()
    if kind == "l2":
        return p.pow(2).sum()
    if kind == "group_lasso":
        # One group per output unit/filter (first axis): drives whole rows to zero.
        return p.reshape(p.shape[0], -1).norm(dim=1).sum() if p.dim() > 1 else p.norm()
    # orthogonality: decorrelate filters, scale-invariant via row normalisation.
    w = F.normalize(p.reshape(p.shape[0], -1), dim=1)
    gram = w @ w.T
    return (gram - torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)).pow(2).sum()


def _proximal_update(kind: str, p: torch.Tensor, lam: float, optimizer: Any) -> None:
    if kind == "proximal_l1":
        step = _effective_lr(optimizer, p)
        shrink = lam * step
        p.copy_(torch.sign(p) * torch.clamp(p.abs() - shrink, min=0.0))
    elif kind == "proximal_clamp":
        p.clamp_(-lam, lam)
    elif kind == "proximal_clamp_positive":
        p.clamp_(0.0, lam)
    else:  # proximal_clamp_min
        p.clamp_(min=lam)


def _effective_lr(optimizer: Any, p: torch.Tensor) -> torch.Tensor | float:
    """Per-element step size of the last update: Adam's geometry when available.

    Soft-thresholding by ``lambda * lr`` is the exact proximal step for SGD; for Adam the
    update is ``lr / (sqrt(v_hat) + eps)`` times the (bias-corrected) gradient, so the
    threshold uses that per-weight preconditioner, as in proximal preconditioned methods.
    """
    if optimizer is None:
        return 0.0
    for group in optimizer.param_groups:
        if any(q is p for q in group["params"]):
            state = optimizer.state.get(p, {})
            if "exp_avg_sq" in state and "betas" in group:
                bias2 = 1 - group["betas"][1] ** float(state["step"])
                return group["lr"] / (state["exp_avg_sq"].sqrt() / bias2**0.5 + group["eps"])
            return float(group["lr"])
    return 0.0


class RegularizerSet:
    """All regularizers of one model: what ``MultiDatasetModel`` calls each step."""

    def __init__(self, regularizers: Sequence[Regularizer]):
        self.regularizers = list(regularizers)

    def __len__(self) -> int:
        return len(self.regularizers)

    def penalty(self, epoch: int, device: torch.device | None = None) -> torch.Tensor:
        """Sum of active loss penalties (a zero tensor when none are active)."""
        terms = [t for r in self.regularizers if (t := r.penalty(epoch)) is not None]
        return torch.stack(terms).sum() if terms else torch.zeros((), device=device)

    def apply_proximal(self, epoch: int, optimizer: torch.optim.Optimizer | None) -> None:
        for reg in self.regularizers:
            reg.apply_proximal(epoch, optimizer)

    def summary(self) -> list[str]:
        """One line per regularizer (logged at start so users see what matched)."""
        return [
            f"{r.spec.name}: {r.spec.type} lambda={r.spec.lam:g} on {len(r.params)} tensors"
            for r in self.regularizers
        ]


def build_regularizers(
    entries: Any,
    named_params: Sequence[tuple[str, torch.Tensor]],
    source: str = "model config",
) -> RegularizerSet:
    """Parse ``entries`` and bind them to ``named_params``; unmatched patterns fail."""
    named_params = list(named_params)
    regs = []
    for i, spec in enumerate(parse_regularizer_specs(entries, source)):
        reg = Regularizer(spec, named_params)
        if not reg.params:
            example = ", ".join(n for n, _ in named_params[:4])
            raise ConfigError(
                source,
                f"regularization[{i}].apply_to",
                f"{list(spec.apply_to)} matches no parameter (names look like: {example}, ...)",
            )
        regs.append(reg)
    return RegularizerSet(regs)
