"""Per-epoch heartbeat line on every rank, and the metric history kept in checkpoints.

Progress bars are useless in ``kubectl logs`` (carriage returns, no newline until the end),
so every rank prints one flushed line per epoch instead: it proves the replica is alive
and shows the numbers that matter. The history is kept in the callback's state so that a
run resumed from ``last.ckpt`` still reports every epoch, including those before the
restart.

Rank 0's progress line every few seconds is ``trainer.callbacks.progress``.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

import pytorch_lightning as pl
import torch

from trainer.contract.result import emit_line

HEARTBEAT_PREFIX = "COREJOB_EPOCH"


def scalar_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Plain floats from Lightning's ``callback_metrics`` (tensors, numbers; NaN kept)."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            out[key] = float(value.detach().cpu())
        elif isinstance(value, int | float):
            out[key] = float(value)
    return out


def batch_size_of(batch: Any) -> int:
    """Samples in a batch: the grouped ``list[dict]`` of the data module, an ``(x, y)``
    pair of tensors, a video family ``{"video", "labels"}`` dict, or a tensor."""
    if isinstance(batch, list | tuple) and batch and isinstance(batch[0], Mapping):
        return sum(int(group["robs"].shape[0]) for group in batch)
    if isinstance(batch, Mapping) and "labels" in batch:
        return int(batch["labels"].shape[0])
    if isinstance(batch, list | tuple) and batch and isinstance(batch[0], torch.Tensor):
        return int(batch[0].shape[0])
    if isinstance(batch, Mapping) and "robs" in batch:
        return int(batch["robs"].shape[0])
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0])
    return 0


def format_heartbeat(
    record: Mapping[str, Any], max_epochs: int, rank: int | None, monitor: str = "val_bps_overall"
) -> str:
    """One log line: epoch, step, losses, the family's metric, LR, time and throughput."""
    parts = [HEARTBEAT_PREFIX]
    if rank is not None:
        parts.append(f"rank={rank}")
    parts.append(f"epoch={record['epoch'] + 1}/{max_epochs}")
    parts.append(f"step={record['global_step']}")
    for key in ("train_loss", "val_loss", monitor):
        if key in record and not math.isnan(record[key]):
            parts.append(f"{key}={record[key]:.4f}")
    if "lr" in record:
        parts.append(f"lr={record['lr']:.3g}")
    parts.append(f"time={record['epoch_time_s']:.1f}s")
    parts.append(f"samples_per_s={record['samples_per_s']:.0f}")
    return " ".join(parts)


class EpochHeartbeat(pl.Callback):
    """Prints one line per epoch (every rank) and records the history (kept in checkpoints).

    Throughput counts samples on every rank (``world_size`` x local samples) over the
    training time of the epoch, validation excluded. Across restarts (preemption, node
    loss) the state in the checkpoint carries the history, the training time, the wall
    time up to that checkpoint and the number of attempts, so a resumed run reports the
    whole job, not only its last attempt.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        attempt_started: float | None = None,
        monitor: str = "val_bps_overall",
    ) -> None:
        self.stream = stream
        self.monitor = monitor
        self.history: list[dict[str, Any]] = []
        self.train_time_s = 0.0
        self.train_samples = 0
        self.attempts = 1
        self.earlier_wall_s = 0.0  # wall time of earlier attempts, up to their last checkpoint
        self.attempt_started = time.perf_counter() if attempt_started is None else attempt_started
        self._epoch_start = 0.0
        self._epoch_train_s = 0.0
        self._epoch_samples = 0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Resuming mid-epoch (after preemption) skips on_train_epoch_start for that epoch.
        self._epoch_start = time.perf_counter()

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epoch_start = time.perf_counter()
        self._epoch_samples = 0
        self._epoch_train_s = 0.0

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, *_: Any
    ) -> None:
        self._epoch_samples += batch_size_of(batch) * trainer.world_size

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking and self._epoch_start and not self._epoch_train_s:
            self._epoch_train_s = time.perf_counter() - self._epoch_start

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Runs before ModelCheckpoint's hook (Lightning orders checkpoint callbacks last),
        # so the epoch-end checkpoint already holds this epoch's validation record.
        if not trainer.sanity_checking:
            self._record_epoch(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        record = self._record_epoch(trainer)
        self.train_time_s += record["train_time_s"]
        self.train_samples += self._epoch_samples
        rank = trainer.global_rank if trainer.world_size > 1 else None
        emit_line(format_heartbeat(record, trainer.max_epochs or 0, rank, self.monitor), self._out)

    def _record_epoch(self, trainer: pl.Trainer) -> dict[str, Any]:
        elapsed = time.perf_counter() - self._epoch_start
        train_s = self._epoch_train_s or elapsed
        if self.history and self.history[-1]["epoch"] == trainer.current_epoch:
            record = self.history[-1]
        else:
            record = {"epoch": trainer.current_epoch}
            self.history.append(record)
        record.update(scalar_metrics(trainer.callback_metrics))
        record.update(
            global_step=trainer.global_step,
            epoch_time_s=elapsed,
            train_time_s=train_s,
            samples_per_s=self._epoch_samples / train_s if train_s > 0 else 0.0,
        )
        lrs = [group["lr"] for opt in trainer.optimizers for group in opt.param_groups]
        if lrs:
            record["lr"] = float(max(lrs))
        return record

    @property
    def _out(self) -> TextIO:
        return self.stream or sys.stdout

    def wall_time_s(self) -> float:
        """Wall time of the whole job so far: earlier attempts plus this one."""
        return self.earlier_wall_s + (time.perf_counter() - self.attempt_started)

    def state_dict(self) -> dict[str, Any]:
        return {
            "history": self.history,
            "train_time_s": self.train_time_s,
            "train_samples": self.train_samples,
            "attempts": self.attempts,
            "wall_time_s": self.wall_time_s(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore from a checkpoint: this process is the next attempt of the same job."""
        self.history = list(state_dict.get("history", []))
        self.train_time_s = float(state_dict.get("train_time_s", 0.0))
        self.train_samples = int(state_dict.get("train_samples", 0))
        self.attempts = int(state_dict.get("attempts", 1)) + 1
        self.earlier_wall_s = float(state_dict.get("wall_time_s", 0.0))
