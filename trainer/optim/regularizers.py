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
from typing import Any

import torch
import torch.nn.functional as F

from trainer.configs.model_schema.regularization import (  # noqa: F401  (re-exported)
    PENALTY_TYPES,
    PROXIMAL_TYPES,
    SCHEDULE_KINDS,
    RegularizerSpec,
    Schedule,
    parse_regularizer_specs,
)
from trainer.contract.errors import ConfigError


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

    def decay_exempt_names(self) -> list[str]:
        """Parameters an ``l2``/``group_lasso`` regularizer owns: AdamW must not decay them
        too (VisionCore means to exclude them but compares names with a different prefix,
        so its exclusion never matches; README of trainer/models)."""
        return sorted(
            {
                n
                for r in self.regularizers
                if r.spec.type in ("l2", "group_lasso")
                for n in r.param_names
            }
        )

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
