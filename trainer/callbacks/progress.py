"""Rank 0's ``COREJOB_PROGRESS`` lines: step, loss, throughput, ETA, last bits/spike.

One heartbeat per epoch is not enough when an epoch takes minutes: a user watching
``corejob submit --wait`` or ``corejob status`` must see life within seconds. Rank 0
prints a structured line (``trainer.contract.progress``) after the first step, every
``--progress_every_seconds`` and at the end; it decides on its own clock, with no
collective, so progress can never slow or block training.
"""

from __future__ import annotations

import datetime
import math
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

import pytorch_lightning as pl
import torch

from trainer.callbacks.heartbeat import EpochHeartbeat, batch_size_of, scalar_metrics
from trainer.contract.progress import progress_line, utc_timestamp
from trainer.contract.result import emit_line


def planned_total_steps(trainer: pl.Trainer) -> int | None:
    """Optimizer steps at the planned end: a time budget's plan when there is one (it
    re-plans as it measures), else Lightning's estimate from max_epochs / max_steps."""
    accumulate = max(1, int(trainer.accumulate_grad_batches or 1))
    for callback in trainer.callbacks:
        planned = getattr(callback, "stop_after_batches", None)
        if isinstance(planned, int) and planned > 0:
            return math.ceil(planned / accumulate)
    try:
        total = float(trainer.estimated_stepping_batches)
    except Exception:  # e.g. Lightning's MisconfigurationException: unknown, not fatal
        return None
    return int(total) if math.isfinite(total) else None


def last_train_loss(trainer: pl.Trainer, outputs: Any) -> float | None:
    """The last step's logged ``train_loss`` (the number the epoch line shows), else the
    loss ``training_step`` returned."""
    metrics = trainer.callback_metrics
    for key in ("train_loss_step", "train_loss"):
        value = metrics.get(key)
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            return float(value.detach().cpu())
    loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
    if isinstance(loss, torch.Tensor) and loss.numel() == 1:
        return float(loss.detach().cpu())
    return None


def validation_summary(
    metrics: Mapping[str, Any], epoch: int, monitor: str = "val_bps_overall"
) -> dict[str, Any] | None:
    """Bits/spike overall and per session (``val_bps/<session>``), None without them; for
    another family, its metric ``monitor`` as ``metric``/``val_metric``."""
    if monitor != "val_bps_overall":
        if monitor not in metrics:
            return None
        return {"metric": monitor, "val_metric": metrics[monitor], "val_epoch": epoch}
    if "val_bps_overall" not in metrics:
        return None
    sessions = {
        key.removeprefix("val_bps/"): value
        for key, value in metrics.items()
        if key.startswith("val_bps/")
    }
    return {"val_bps_overall": metrics["val_bps_overall"], "val_bps": sessions, "val_epoch": epoch}


class ProgressReporter(pl.Callback):
    """Rank 0 prints ``COREJOB_PROGRESS {json}`` (:mod:`trainer.contract.progress`) every
    ``every_s`` seconds, once right after the first step (life is visible at once) and
    once at the end of training.

    Rank 0 decides alone, from its own clock: no collective, so progress can never slow
    or block training; other ranks print nothing. Numbers that cost a device sync (the
    loss) are read only when a line is due. Throughput counts training time only (the
    gaps around validation are left out); the ETA extrapolates the attempt's wall time
    per step, validation included, to the planned last step.
    """

    def __init__(
        self,
        every_s: float = 10.0,
        heartbeat: EpochHeartbeat | None = None,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime.datetime] | None = None,
        monitor: str = "val_bps_overall",
    ) -> None:
        if every_s <= 0:
            raise ValueError("every_s must be positive")
        self.every_s = every_s
        self.heartbeat = heartbeat
        self.stream = stream
        self.clock = clock
        self.wall_clock = wall_clock
        self.last_emit: float | None = None
        self._first: tuple[float, int] | None = None  # (clock, step) after the first batch
        self._previous_batch_end: float | None = None
        self._window_s = 0.0
        self._window_samples = 0
        self._samples_per_s: float | None = None
        self._loss: float | None = None
        self.monitor = monitor
        self._val: dict[str, Any] = (
            {"val_bps_overall": None, "val_bps": {}, "val_epoch": None}
            if monitor == "val_bps_overall"
            else {"metric": monitor, "val_metric": None, "val_epoch": None}
        )

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """A resumed run shows the last validation of its earlier attempts until it has one."""
        history = self.heartbeat.history if self.heartbeat else []
        for record in reversed(history):
            found = validation_summary(record, int(record["epoch"]) + 1, self.monitor)
            if found is not None:
                self._val = found
                break

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._previous_batch_end = None  # the gap before an epoch's first batch is not training

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._previous_batch_end = None  # nor is validation

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, *_: Any
    ) -> None:
        if not trainer.is_global_zero:
            return
        now = self.clock()
        if self._previous_batch_end is not None:
            self._window_s += now - self._previous_batch_end
            self._window_samples += batch_size_of(batch) * trainer.world_size
        self._previous_batch_end = now
        first = self._first is None
        if first:
            self._first = (now, trainer.global_step)
        if first or self._due(now):
            self._loss = last_train_loss(trainer, outputs)
            self._emit(trainer, "train", now)

    def on_validation_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, *_: Any
    ) -> None:
        """Long validations keep reporting (the controller sees a live job, phase validate)."""
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        now = self.clock()
        if self._due(now):
            self._emit(trainer, "validate", now)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        metrics = scalar_metrics(trainer.callback_metrics)
        found = validation_summary(metrics, trainer.current_epoch + 1, self.monitor)
        if found is not None:
            self._val = found

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            self._loss = last_train_loss(trainer, None)  # the last step's, not a stale one
            self._emit(trainer, "end", self.clock())

    def _due(self, now: float) -> bool:
        return self.last_emit is None or now - self.last_emit >= self.every_s

    def _emit(self, trainer: pl.Trainer, phase: str, now: float) -> None:
        self.last_emit = now
        emit_progress(trainer, progress_line(self.record(trainer, phase, now)), self.stream)

    def record(self, trainer: pl.Trainer, phase: str, now: float) -> dict[str, Any]:
        """The progress record as of ``now`` (resets the throughput window)."""
        if self._window_s > 0:
            self._samples_per_s = self._window_samples / self._window_s
        self._window_s, self._window_samples = 0.0, 0
        step, total = trainer.global_step, planned_total_steps(trainer)
        max_epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else None
        epoch = trainer.current_epoch + (0 if phase == "end" else 1)
        if max_epochs is not None:
            epoch = min(epoch, max_epochs)
        eta = None
        if phase == "end":
            eta = 0.0
        elif total is not None and self._first is not None and step > self._first[1]:
            per_step = (now - self._first[0]) / (step - self._first[1])
            eta = max(0.0, (total - step) * per_step)
        wall = self.wall_clock() if self.wall_clock else None
        return {
            "time": utc_timestamp(wall),
            "phase": phase,
            "epoch": max(1, epoch),
            "max_epochs": max_epochs,
            "step": step,
            "total_steps": total,
            "train_loss": self._loss,
            "samples_per_s": self._samples_per_s,
            "eta_s": eta,
            **self._val,
            "attempt": self.heartbeat.attempts if self.heartbeat else 1,
            "world_size": trainer.world_size,
        }


def emit_progress(trainer: pl.Trainer, line: str, stream: TextIO | None) -> None:
    """One line: through the progress bar on a terminal (so the bar is redrawn below it),
    else one flushed write (logs)."""
    bar = trainer.progress_bar_callback
    if stream is None and bar is not None and sys.stdout.isatty():
        bar.print(line)
    else:
        emit_line(line, stream)
