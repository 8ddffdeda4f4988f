"""AdamW with core/head parameter groups and weight decay only where it means something.

The core group's LR is ``learning_rate * core_lr_scale``: the scale is applied to the
optimizer's param group itself, because a scale that only lives in the config trains the
core at the head LR without a word. Weight decay applies to the parameters that set a
layer's weights: >=2-D parameters, except those a component declares are not weights or
whose scale the output ignores (``no_weight_decay``: positions, transforms, norm gains,
the direction ``v`` of weight norm), plus 1-D ones a component declares are a kernel's
magnitude (``kernel_magnitudes``: weight norm's ``g``); the model config's
``weight_decay_exclude`` patterns exclude more. Every pattern must match a real
parameter, so an exclusion compared against names that never match is an error, not a
silent no-op. Why not VisionCore's rule (names ending in ``.weight``): trainer/models/README.md.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from trainer.contract.errors import ConfigError
from trainer.optim.schedulers import (
    LinearWarmupCosineAnnealingLR,
    LinearWarmupCosineAnnealingWarmRestartsLR,
)

SCHEDULERS = ("cosine", "cosine_restarts", "none")
# The shared stages (VisionCore's module names); adapters, readouts, baselines and
# history encoders are per session (the "head").
CORE_STAGES = ("frontend.", "convnet.", "modulator.", "recurrent.")


@dataclass(frozen=True)
class OptimSettings:
    """Optimizer and LR-schedule settings (the CLI's ``--learning_rate`` etc.)."""

    learning_rate: float = 1e-3
    core_lr_scale: float = 1.0
    weight_decay: float = 1e-4
    lr_scheduler: str = "cosine"
    warmup_epochs: float = 1.0
    restart_period: int | None = None  # epochs per cosine cycle; default max_epochs // 2
    max_epochs: int = 100
    steps_per_epoch: int | None = None  # optimizer steps per epoch when no trainer says

    def __post_init__(self) -> None:
        if self.lr_scheduler not in SCHEDULERS:
            raise ConfigError(
                "--lr_scheduler", self.lr_scheduler, f"unknown; allowed: {', '.join(SCHEDULERS)}"
            )
        for key in ("learning_rate", "core_lr_scale", "weight_decay", "warmup_epochs"):
            if getattr(self, key) < 0:
                raise ConfigError(f"--{key}", str(getattr(self, key)), "must be >= 0")
        if self.max_epochs < 1:
            raise ConfigError("--max_epochs", str(self.max_epochs), "must be >= 1 for a schedule")


def no_decay_names(
    model: nn.Module, patterns: Sequence[str] = (), source: str = "model config"
) -> set[str]:
    """Names of parameters excluded from weight decay.

    <2-D parameters (biases, norm gains, scalars) do not decay unless a component lists
    them in ``kernel_magnitudes``; components list >=2-D non-weights in
    ``no_weight_decay``; ``patterns`` (fnmatch) add more and each must match at least
    one parameter, or it is a typo the user should hear about.
    """
    names = {n for n, p in model.named_parameters() if p.ndim < 2}
    for prefix, module in model.named_modules():
        for attribute, add in (("no_weight_decay", True), ("kernel_magnitudes", False)):
            for local in _declared(module, attribute):
                full = f"{prefix}.{local}" if prefix else local
                (names.add if add else names.discard)(full)
    all_names = [n for n, _ in model.named_parameters()]
    for pattern in patterns:
        hits = fnmatch.filter(all_names, pattern)
        if not hits:
            raise ConfigError(
                source, "weight_decay_exclude", f"pattern {pattern!r} matches no parameter"
            )
        names.update(hits)
    return names


def _declared(module: nn.Module, attribute: str) -> list[str]:
    """The names a module lists under ``attribute`` that are its parameters."""
    local = getattr(module, attribute, ())
    return [n for n in local if isinstance(getattr(module, n, None), nn.Parameter)]


def param_groups(
    model: nn.Module,
    settings: OptimSettings,
    patterns: Sequence[str] = (),
    source: str = "model config",
) -> list[dict]:
    """Up to four AdamW groups: {core, head} x {decay, no_decay}, each with its own LR.

    Parameters of the shared stages (``CORE_STAGES``) are the core; the per-session rest
    (adapters, readouts, baselines, history encoders) is the head.
    Frozen parameters (``requires_grad=False``) are left out.
    """
    skip_decay = no_decay_names(model, patterns, source)
    lrs = {"core": settings.learning_rate * settings.core_lr_scale, "head": settings.learning_rate}
    groups: dict[str, dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        part = "core" if name.startswith(CORE_STAGES) else "head"
        decay = name not in skip_decay
        key = f"{part}_{'decay' if decay else 'no_decay'}"
        group = groups.setdefault(
            key,
            {
                "name": key,
                "params": [],
                "param_names": [],
                "lr": lrs[part],
                "weight_decay": settings.weight_decay if decay else 0.0,
            },
        )
        group["params"].append(param)
        group["param_names"].append(name)
    return list(groups.values())


def build_optimizer(
    model: nn.Module,
    settings: OptimSettings,
    patterns: Sequence[str] = (),
    source: str = "model config",
) -> torch.optim.AdamW:
    """AdamW over ``param_groups``."""
    return torch.optim.AdamW(
        param_groups(model, settings, patterns, source), lr=settings.learning_rate
    )


def build_scheduler(
    optimizer: torch.optim.Optimizer, settings: OptimSettings, steps_per_epoch: int
) -> LinearWarmupCosineAnnealingLR | None:
    """The configured per-step schedule (``None`` for ``lr_scheduler: none``)."""
    if settings.lr_scheduler == "none":
        return None
    warmup = round(settings.warmup_epochs * steps_per_epoch)
    total = max(1, settings.max_epochs * steps_per_epoch)
    if settings.lr_scheduler == "cosine":
        return LinearWarmupCosineAnnealingLR(optimizer, warmup, total)
    period_epochs = settings.restart_period or max(1, settings.max_epochs // 2)
    return LinearWarmupCosineAnnealingWarmRestartsLR(
        optimizer, warmup, total, period_epochs * steps_per_epoch
    )


def optimizer_steps_per_epoch(estimated_per_epoch: float | None, settings: OptimSettings) -> int:
    """Optimizer steps per epoch: the trainer's estimate when finite, else the settings'."""
    finite = estimated_per_epoch is not None and math.isfinite(estimated_per_epoch)
    if finite and estimated_per_epoch > 0:
        return max(1, round(estimated_per_epoch))
    if settings.steps_per_epoch:
        return settings.steps_per_epoch
    raise ConfigError(
        "--steps_per_epoch", "None", "needed for the LR schedule when the epoch length is unknown"
    )
