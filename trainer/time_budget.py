"""``--time_budget_minutes``: fit the number of epochs to a wall-clock budget.

The first steps are timed (the very first is skipped: it pays for lazy initialisation),
which gives a first estimate of an epoch's cost; each finished epoch (training plus
validation) then refines it. ``max_epochs`` is set to what still fits, on every rank the
same (rank 0 decides and broadcasts, so no rank stops alone and hangs the others). Per-step
LR schedules that know their length are stretched to match, so a cosine schedule still
ends at the last epoch that will actually run. An epoch longer than the whole budget is cut
at the hard limit. ``clock="cpu"`` budgets this process's CPU time instead of wall time:
the fair measure on a machine shared with other jobs.
"""

from __future__ import annotations

import math
import time

import pytorch_lightning as pl

_VAL_OVERHEAD = 1.2  # first guess of (train + val) / train, replaced after epoch 1
_HARD_STOP_EVERY = 10  # steps between checks of the hard limit (a broadcast under DDP)
CLOCKS = ("wall", "cpu")  # cpu: this process's CPU time (fair on a shared machine)


def epochs_that_fit(budget_s: float, elapsed_s: float, epoch_s: float, epochs_done: int) -> int:
    """Total epochs (done + future) that end before the budget; at least ``epochs_done`` + 1
    while nothing has finished, so a run always trains for one epoch."""
    if epoch_s <= 0:
        return max(1, epochs_done)
    more = math.floor(max(0.0, budget_s - elapsed_s) / epoch_s)
    return max(1, epochs_done + more)


def rescale_schedules(trainer: pl.Trainer, factor: float) -> None:
    """Stretch per-step LR schedules that know their length (``total_steps``).

    The warmup-cosine schedules of ``trainer.schedulers`` compute the LR from
    ``last_epoch`` and ``total_steps`` on every step, so changing ``total_steps`` re-plans
    the rest of the run and the cosine still reaches its floor at the last epoch.
    """
    for config in trainer.lr_scheduler_configs:
        scheduler = config.scheduler
        total = getattr(scheduler, "total_steps", None)
        if isinstance(total, int):
            floor = getattr(scheduler, "warmup_steps", 0) + 1
            scheduler.total_steps = max(floor, round(total * factor))


class TimeBudgetCallback(pl.Callback):
    """Sets ``trainer.fit_loop.max_epochs`` so that training ends within the budget."""

    def __init__(
        self,
        budget_minutes: float,
        benchmark_steps: int = 10,
        safety: float = 0.95,
        clock: str = "wall",
    ):
        if budget_minutes <= 0:
            raise ValueError("time budget must be positive")
        if clock not in CLOCKS:
            raise ValueError(f"clock must be one of {CLOCKS}")
        self.hard_limit_s = budget_minutes * 60.0
        self.budget_s = self.hard_limit_s * safety
        self.clock = clock
        self._now = time.process_time if clock == "cpu" else time.monotonic
        self.benchmark_steps = benchmark_steps
        self.start: float | None = None
        self._step_start = 0.0
        self._step_times: list[float] = []
        self._epoch_start = 0.0
        self.epoch_times: list[float] = []
        self.decided_epochs: int | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.start = self._now()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._epoch_start = self._now()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        self._step_start = self._now()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if batch_idx % _HARD_STOP_EVERY == _HARD_STOP_EVERY - 1:
            self._stop_if_over(trainer)
        if self.epoch_times or len(self._step_times) > self.benchmark_steps:
            return
        self._step_times.append(self._now() - self._step_start)
        steps_per_epoch = trainer.num_training_batches
        enough = len(self._step_times) > min(self.benchmark_steps, steps_per_epoch - 1)
        if enough and math.isfinite(steps_per_epoch):
            timed = self._step_times[1:] or self._step_times
            epoch_s = sum(timed) / len(timed) * steps_per_epoch * _VAL_OVERHEAD
            self._apply(trainer, pl_module, epoch_s, epochs_done=0)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self.start is None:
            return
        self.epoch_times.append(self._now() - self._epoch_start)
        recent = self.epoch_times[-3:]
        self._apply(trainer, pl_module, sum(recent) / len(recent), trainer.current_epoch + 1)

    def _stop_if_over(self, trainer: pl.Trainer) -> None:
        """Safety net inside a long epoch: stop at the hard limit (same step on all ranks)."""
        over = self.start is not None and self._now() - self.start > self.hard_limit_s
        if trainer.strategy.broadcast(bool(over), src=0):
            if trainer.is_global_zero and not trainer.should_stop:
                print("[time budget] limit reached inside an epoch: stopping", flush=True)
            trainer.should_stop = True

    def _apply(self, trainer: pl.Trainer, pl_module, epoch_s: float, epochs_done: int) -> None:
        elapsed = self._now() - (self.start or self._now())
        fit = epochs_that_fit(self.budget_s, elapsed, epoch_s, epochs_done)
        configured = trainer.fit_loop.max_epochs
        if configured is not None and configured >= 0:
            fit = min(fit, configured)
        fit = int(trainer.strategy.broadcast(fit, src=0))
        if fit == self.decided_epochs:
            return
        previous = self.decided_epochs or configured
        self.decided_epochs = fit
        trainer.fit_loop.max_epochs = fit
        if fit <= epochs_done:
            trainer.should_stop = True
        if previous and previous > 0:
            rescale_schedules(trainer, fit / previous)
        if trainer.is_global_zero:
            print(f"[time budget] ~{epoch_s:.1f}s/epoch: max_epochs={fit}", flush=True)

    def state_dict(self) -> dict:
        return {"epoch_times": self.epoch_times, "decided_epochs": self.decided_epochs}

    def load_state_dict(self, state_dict: dict) -> None:
        self.epoch_times = list(state_dict.get("epoch_times", []))
        self.decided_epochs = state_dict.get("decided_epochs")
