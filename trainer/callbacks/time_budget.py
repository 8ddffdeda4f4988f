"""``--time_budget_minutes``: fit the run, to the training step, into a time budget.

Planning is in training batches, not epochs: with epochs of hundreds of steps, rounding
down to whole epochs left up to an epoch of the budget unused. The plan is the largest
number of batches whose training *and* validation passes (every epoch end, plus one final
validation when the run stops inside an epoch) end before the budget. Stopping inside an
epoch sets ``trainer.should_stop``, which makes Lightning validate at that step, so the
run always ends with a full validation of its final weights.

Costs are measured, not guessed: the first steps give the batch cost (the very first is
skipped: it pays for lazy initialisation), Lightning's sanity check gives a first
validation cost (its batches scaled to the whole validation set), each finished epoch
gives both the batch cost and what the epoch spent outside batches (validation,
checkpointing), and the plan is redone after every epoch. Rank 0 decides and broadcasts,
so every rank stops at the same step (none stops alone and hangs the others). Per-step LR
schedules that know their length are re-planned to end at the planned step, so a cosine
still reaches its floor. A hard limit stops a run whose estimates were wrong.
``clock="cpu"`` budgets this process's CPU time instead of wall time: the fair measure on
a machine shared with other jobs.
"""

from __future__ import annotations

import math
import time

import pytorch_lightning as pl

_VAL_OVERHEAD = 0.2  # guess of (validation + epoch end) / epoch training, without a sanity check
_HARD_STOP_EVERY = 10  # batches between checks of the hard limit (a broadcast under DDP)
CLOCKS = ("wall", "cpu")  # cpu: this process's CPU time (fair on a shared machine)


def validations_between(done: int, total: int, per_epoch: int) -> int:
    """Validation passes run after batch ``done`` up to a stop after batch ``total``:
    one per epoch end crossed, plus the final one when ``total`` is inside an epoch."""
    if total <= done:
        return 0
    ends = total // per_epoch - done // per_epoch
    return ends + (1 if total % per_epoch else 0)


def batches_that_fit(
    remaining_s: float, batch_s: float, validation_s: float, done: int, per_epoch: int, cap: int
) -> int:
    """Total batches (done + future, at most ``cap``) whose cost fits ``remaining_s``.

    The cost of stopping after batch ``total`` is its batches plus its validation passes
    (``validations_between``); it grows with ``total``, so a binary search finds the
    largest that fits. At least one batch runs when none has, so a run always trains.
    """

    def cost(total: int) -> float:
        return (total - done) * batch_s + validations_between(done, total, per_epoch) * validation_s

    low, high = done, max(done, cap)
    while low < high:
        middle = (low + high + 1) // 2
        if cost(middle) <= remaining_s:
            low = middle
        else:
            high = middle - 1
    return max(low, 1)


def replan_schedules(trainer: pl.Trainer, total_batches: int) -> None:
    """Make per-step LR schedules that know their length (``total_steps``) end at the plan.

    The warmup-cosine schedules of ``trainer.optim.schedulers`` compute the LR from
    ``last_epoch`` and ``total_steps`` on every step, so changing ``total_steps`` re-plans
    the rest of the run and the cosine still reaches its floor at the last planned step.
    """
    steps = math.ceil(total_batches / max(1, trainer.accumulate_grad_batches))
    for config in trainer.lr_scheduler_configs:
        scheduler = config.scheduler
        if isinstance(getattr(scheduler, "total_steps", None), int):
            scheduler.total_steps = max(getattr(scheduler, "warmup_steps", 0) + 1, steps)


class TimeBudgetCallback(pl.Callback):
    """Stops training at the last batch that fits the budget (validation included)."""

    def __init__(
        self,
        budget_minutes: float,
        benchmark_steps: int = 10,
        safety: float = 0.97,
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
        self._batch_times: list[float] = []
        self._last_batch_end: float | None = None
        self._epoch_start = 0.0
        self._epoch_train_end = 0.0
        self._epoch_batches = 0
        self.epoch_costs: list[tuple[float, float]] = []  # (per batch, outside batches) in s
        self.stop_after_batches: int | None = None
        self._cap: int | None = None  # the trainer's own limit, read before the first plan
        self._sanity_start: float | None = None
        self.validation_estimate_s: float | None = None  # from the sanity check

    # -- measurements ------------------------------------------------------------------
    def on_sanity_check_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._sanity_start = self._now()

    def on_sanity_check_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """A whole validation pass costs (sanity batches' time / count) x all batches."""
        if self._sanity_start is None:
            return
        seen = sum(trainer.num_sanity_val_batches)
        total = sum(trainer.num_val_batches)
        if seen > 0 and math.isfinite(total):
            self.validation_estimate_s = (self._now() - self._sanity_start) / seen * total

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.start = self._now()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._epoch_start = self._last_batch_end = self._now()
        self._epoch_batches = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        now = self._now()
        benchmarking = not self.epoch_costs and len(self._batch_times) <= self.benchmark_steps
        if benchmarking and self._last_batch_end is not None:
            self._batch_times.append(now - self._last_batch_end)  # data loading included
        self._last_batch_end = self._epoch_train_end = now
        self._epoch_batches += 1
        done = batches_done(trainer)
        if self.stop_after_batches is not None and done >= self.stop_after_batches:
            trainer.should_stop = True  # Lightning validates at this step, then stops
        elif batch_idx % _HARD_STOP_EVERY == _HARD_STOP_EVERY - 1:
            self._stop_if_over(trainer)
        if benchmarking and len(self._batch_times) == self.benchmark_steps + 1:
            timed = self._batch_times[1:]
            batch_s = sum(timed) / len(timed)
            self._plan(trainer, batch_s, self._first_validation_guess(trainer, batch_s), done)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.start is None or self._epoch_batches == 0:
            return
        now = self._now()
        train_s = self._epoch_train_end - self._epoch_start
        self.epoch_costs.append((train_s / self._epoch_batches, now - self._epoch_train_end))
        recent = self.epoch_costs[-3:]
        batch_s = sum(c[0] for c in recent) / len(recent)
        outside_s = sum(c[1] for c in recent) / len(recent)
        if not trainer.should_stop:
            self._plan(trainer, batch_s, outside_s, batches_done(trainer))

    # -- decisions ---------------------------------------------------------------------
    def _first_validation_guess(self, trainer: pl.Trainer, batch_s: float) -> float:
        """Validation cost before any epoch ended: the sanity check's, else a rule of thumb."""
        if not validates(trainer):
            return 0.0
        if self.validation_estimate_s is not None:
            return self.validation_estimate_s
        return batch_s * (epoch_length(trainer) or 0) * _VAL_OVERHEAD

    def _stop_if_over(self, trainer: pl.Trainer) -> None:
        """Safety net for wrong estimates: stop at the hard limit (same step on all ranks)."""
        over = self.start is not None and self._now() - self.start > self.hard_limit_s
        if trainer.strategy.broadcast(bool(over), src=0):
            if trainer.is_global_zero and not trainer.should_stop:
                print("[time budget] hard limit reached: stopping", flush=True)
            trainer.should_stop = True

    def _plan(self, trainer: pl.Trainer, batch_s: float, outside_s: float, done: int) -> None:
        per_epoch = epoch_length(trainer)
        if per_epoch is None:
            return  # unknown epoch length: only the hard limit applies
        elapsed = self._now() - (self.start if self.start is not None else self._now())
        if self._cap is None:
            self._cap = planned_cap(trainer, per_epoch)
        total = batches_that_fit(
            self.budget_s - elapsed, batch_s, outside_s, done, per_epoch, self._cap
        )
        total = int(trainer.strategy.broadcast(total, src=0))
        if total == self.stop_after_batches:
            return
        self.stop_after_batches = total
        trainer.fit_loop.max_epochs = max(1, math.ceil(total / per_epoch))
        if total <= done:
            trainer.should_stop = True
        replan_schedules(trainer, total)
        if trainer.is_global_zero:
            print(
                f"[time budget] {batch_s * 1000:.0f} ms/batch, {outside_s:.1f} s/validation:"
                f" stopping after batch {total} (epoch {math.ceil(total / per_epoch)})",
                flush=True,
            )

    def state_dict(self) -> dict:
        return {"epoch_costs": self.epoch_costs, "stop_after_batches": self.stop_after_batches}

    def load_state_dict(self, state_dict: dict) -> None:
        self.epoch_costs = [tuple(c) for c in state_dict.get("epoch_costs", [])]
        self.stop_after_batches = state_dict.get("stop_after_batches")


def epoch_length(trainer: pl.Trainer) -> int | None:
    """Training batches per epoch, or ``None`` when the loader has no length."""
    n = trainer.num_training_batches
    return int(n) if math.isfinite(n) and n > 0 else None


def validates(trainer: pl.Trainer) -> bool:
    """Whether epochs end with a validation pass (a loader is set and not limited to 0)."""
    return bool(trainer.limit_val_batches) and trainer.val_dataloaders is not None


def batches_done(trainer: pl.Trainer) -> int:
    """Training batches run so far in this fit, across epochs (restored on resume)."""
    return int(trainer.fit_loop.epoch_loop.total_batch_idx) + 1


def planned_cap(trainer: pl.Trainer, per_epoch: int) -> int:
    """The most batches the trainer's own limits allow (``max_epochs``, ``max_steps``)."""
    caps = []
    configured = trainer.fit_loop.max_epochs
    if configured is not None and configured >= 0:
        caps.append(configured * per_epoch)
    max_steps = trainer.max_steps
    if max_steps is not None and max_steps >= 0:
        caps.append(max_steps * max(1, trainer.accumulate_grad_batches))
    return min(caps) if caps else 10**9
