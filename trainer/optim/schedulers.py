"""Learning-rate schedules that step once per optimizer step.

Warmup is per step and starts at ``base / (warmup + 1)``, reaching ``base`` at the first
cosine step (a per-epoch warmup that starts at 0 trains the whole first epoch at LR 0);
Lightning calls ``step()`` every optimizer step (``interval: "step"``). Each param group
keeps its own base LR, so the core/head ratio set by ``core_lr_scale`` holds throughout.
"""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler


def warmup_cosine_lr(
    step: int,
    base_lr: float,
    warmup_steps: int,
    total_steps: int,
    eta_min: float = 0.0,
    restart_period: int | None = None,
) -> float:
    """LR at ``step`` (0-based): linear warmup, then cosine to ``eta_min`` (optionally restarting).

    Warmup: ``base * (step + 1) / (warmup_steps + 1)`` — positive from the first step.
    Cosine: progress ``(step - warmup) / (total - warmup)`` clamped to 1, or, with
    ``restart_period``, the position inside the current period (warm restarts).
    """
    if step < warmup_steps:
        return base_lr * (step + 1) / (warmup_steps + 1)
    since = step - warmup_steps
    if restart_period:
        progress = (since % restart_period) / restart_period
    else:
        progress = min(1.0, since / max(1, total_steps - warmup_steps))
    return eta_min + (base_lr - eta_min) * 0.5 * (1.0 + math.cos(math.pi * progress))


class LinearWarmupCosineAnnealingLR(LRScheduler):
    """Linear warmup over ``warmup_steps``, then cosine annealing to ``eta_min`` at the end."""

    restart_period: int | None = None  # set by the warm-restarts variant

    def __init__(
        self,
        optimizer: Optimizer,
        warmup_steps: int,
        total_steps: int,
        eta_min: float = 0.0,
        last_epoch: int = -1,
    ) -> None:
        if warmup_steps < 0 or total_steps < 1:
            raise ValueError(
                f"need warmup_steps >= 0 and total_steps >= 1, got {warmup_steps}, {total_steps}"
            )
        self.warmup_steps, self.total_steps, self.eta_min = warmup_steps, total_steps, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [
            warmup_cosine_lr(
                self.last_epoch,
                base,
                self.warmup_steps,
                self.total_steps,
                self.eta_min,
                self.restart_period,
            )
            for base in self.base_lrs
        ]


class LinearWarmupCosineAnnealingWarmRestartsLR(LinearWarmupCosineAnnealingLR):
    """Linear warmup, then cosine cycles of ``restart_period`` steps, each from the base LR."""

    def __init__(
        self,
        optimizer: Optimizer,
        warmup_steps: int,
        total_steps: int,
        restart_period: int,
        eta_min: float = 0.0,
        last_epoch: int = -1,
    ) -> None:
        if restart_period < 1:
            raise ValueError(f"restart_period must be >= 1 step, got {restart_period}")
        self.restart_period = restart_period
        super().__init__(optimizer, warmup_steps, total_steps, eta_min, last_epoch)
