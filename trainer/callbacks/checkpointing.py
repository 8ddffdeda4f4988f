"""Checkpoints: top-k by ``val_bps_overall`` + ``last.ckpt`` at epoch ends, and mid-epoch
saves of ``last.ckpt`` on SIGTERM and every ``--checkpoint_every_minutes``.

SIGTERM handling itself (recording the signal, exit 143) is part of the job contract
(``trainer.contract.preemption``); this module turns a recorded signal into a complete
``last.ckpt`` at a step boundary that every rank agrees on. Files are written atomically
by ``trainer.checkpoints.AtomicCheckpointIO``. Long epochs on a cluster would otherwise
lose up to an epoch of work to a preemption or a node loss; the interval bounds it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from trainer.checkpoints import LAST_CKPT
from trainer.contract.preemption import Preempted, SigtermFlag

MONITOR = "val_bps_overall"
__all__ = [
    "LAST_CKPT",
    "MONITOR",
    "MidEpochCheckpoint",
    "StepSeededRandomness",
    "model_checkpoint",
    "step_seed",
]


def model_checkpoint(
    checkpoint_dir: Path,
    save_top_k: int,
    validates: bool,
    monitor: str = MONITOR,
    tag: str = "bps",
) -> ModelCheckpoint:
    """Top-k by the family's metric (``val_bps_overall`` for V1) + ``last.ckpt``; only
    ``last.ckpt`` without validation. ``tag`` names the metric in the file name."""
    return ModelCheckpoint(
        dirpath=checkpoint_dir,
        filename=f"epoch{{epoch:03d}}-{tag}{{{monitor}:.4f}}" if validates else "epoch{epoch:03d}",
        auto_insert_metric_name=False,
        monitor=monitor if validates else None,
        mode="max",
        save_top_k=save_top_k if validates else 0,
        save_last=True,
        # After validation and after the heartbeat recorded the epoch into the history.
        save_on_train_epoch_end=True,
    )


class MidEpochCheckpoint(pl.Callback):
    """Saves ``last.ckpt`` between optimizer steps: on SIGTERM (then stops) and on a timer.

    After every training batch the ranks agree, in one collective, on two flags: "some
    rank received SIGTERM" and "rank 0's clock says the interval has passed". Either one
    makes every rank call ``save_checkpoint`` at the same step (rank 0 writes). A SIGTERM on
    an epoch's *last* batch waits for that epoch's validation, so a resumed run's history
    has no hole; the save and the stop follow right after it.

    The batch position inside the epoch is handed to the training loader
    (``trainer.data.batching.ResumableLoader``), so the checkpoint records which batches of
    the epoch are done and a resumed run continues with the others: no replay, no skip.
    """

    def __init__(
        self,
        flag: SigtermFlag,
        last_ckpt_path: Path,
        every_minutes: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.flag = flag
        self.last_ckpt_path = Path(last_ckpt_path)
        self.every_s = every_minutes * 60.0 if every_minutes else None
        self.clock = clock
        self.saved_at = 0.0
        self.interval_saves = 0
        self._stop_after_validation = False

    # -- SIGTERM handler ownership ------------------------------------------------------
    def on_sanity_check_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning registered its handler just before this hook: take SIGTERM back.
        self.flag.install()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.flag.armed = True
        self.flag.install()
        self.saved_at = self.clock()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Training is complete and last.ckpt written: finishing (exit 0) beats a restart.
        self.flag.armed = False

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self.flag.armed = False

    # -- the saves ------------------------------------------------------------------------
    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
        batch_idx: int,
    ) -> None:  # fmt: skip
        done = batch_idx + 1
        loader = trainer.train_dataloader
        if hasattr(loader, "record_position"):
            loader.record_position(trainer.current_epoch, done)
        preempted, due = self._collective_flags(trainer)
        last_batch = done >= trainer.num_training_batches
        if preempted and last_batch:
            self._stop_after_validation = True  # validate this epoch first (see class doc)
        elif preempted:
            self._save_and_stop(trainer, "SIGTERM")
        elif due and not last_batch:  # at the last batch the epoch-end save comes anyway
            trainer.save_checkpoint(self.last_ckpt_path)
            self.interval_saves += 1
            self.saved_at = self.clock()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._stop_after_validation and not trainer.sanity_checking:
            self._save_and_stop(trainer, "SIGTERM on the epoch's last batch, after validation")

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._stop_after_validation:  # this run does not validate at this epoch's end
            self._save_and_stop(trainer, "SIGTERM on the epoch's last batch")
        self.saved_at = self.clock()  # the epoch-end checkpoint follows this hook

    def _save_and_stop(self, trainer: pl.Trainer, why: str) -> None:
        trainer.save_checkpoint(self.last_ckpt_path)
        raise Preempted(f"{why}: saved {self.last_ckpt_path} at step {trainer.global_step}")

    def _collective_flags(self, trainer: pl.Trainer) -> tuple[bool, bool]:
        """(any rank got SIGTERM, rank 0's interval elapsed) — one all-reduce under DDP."""
        due = bool(
            self.every_s is not None
            and trainer.global_rank == 0
            and self.clock() - self.saved_at >= self.every_s
        )
        if trainer.world_size == 1:
            return self.flag.received, due
        flags = torch.tensor(
            [float(self.flag.received), float(due)], device=trainer.strategy.root_device
        )
        reduced = trainer.strategy.reduce(flags, reduce_op="max")
        return bool(reduced[0].item() > 0), bool(reduced[1].item() > 0)


# Random numbers that are a function of the training step, so a resumed run repeats them.
# Training draws random numbers (the Gaussian readout samples positions, augmentation
# jitters stimuli). Their generators' states are not in a checkpoint, so a run resumed
# mid-epoch would draw different numbers than the uninterrupted run and end with different
# weights. Re-seeding every generator before each training batch from (seed, rank, global
# step) makes the draws depend only on where training is, not on how it got there: a run
# preempted and resumed any number of times ends bit-identical to one that never was.


def step_seed(seed: int, rank: int, step: int) -> int:
    """A well-mixed 63-bit seed for one (run seed, rank, global step)."""
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(2, np.uint64)[0] >> 1)


class StepSeededRandomness(pl.Callback):
    """Seeds torch (CPU and CUDA) and the data module's augmenter before every batch."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        seed = step_seed(self.seed, trainer.global_rank, trainer.global_step)
        torch.manual_seed(seed)
        augmenter = getattr(trainer.datamodule, "augmenter", None)
        if augmenter is not None:
            augmenter.reseed(seed)
