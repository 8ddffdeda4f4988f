"""Checkpoints: top-k by ``val_bps_overall`` + ``last.ckpt``, and the preemption save.

SIGTERM handling itself (recording the signal, exit 143) is part of the job contract
(``trainer.contract.preemption``); this module turns a recorded signal into a complete
``last.ckpt`` at a step boundary that every rank agrees on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from trainer.contract.preemption import Preempted, SigtermFlag

MONITOR = "val_bps_overall"
LAST_CKPT = "last.ckpt"


def model_checkpoint(checkpoint_dir: Path, save_top_k: int, validates: bool) -> ModelCheckpoint:
    """Top-k by ``val_bps_overall`` + ``last.ckpt``; only ``last.ckpt`` without validation."""
    return ModelCheckpoint(
        dirpath=checkpoint_dir,
        filename="epoch{epoch:03d}-bps{val_bps_overall:.4f}" if validates else "epoch{epoch:03d}",
        auto_insert_metric_name=False,
        monitor=MONITOR if validates else None,
        mode="max",
        save_top_k=save_top_k if validates else 0,
        save_last=True,
        # After validation and after the heartbeat recorded the epoch into the history.
        save_on_train_epoch_end=True,
    )


class PreemptionCheckpoint(pl.Callback):
    """Checks the SIGTERM flag after every training batch; saves ``last.ckpt`` and stops."""

    def __init__(self, flag: SigtermFlag, last_ckpt_path: Path) -> None:
        self.flag = flag
        self.last_ckpt_path = Path(last_ckpt_path)

    def on_sanity_check_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning registered its handler just before this hook: take SIGTERM back.
        self.flag.install()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.flag.armed = True
        self.flag.install()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Training is complete and last.ckpt written: finishing (exit 0) beats a restart.
        self.flag.armed = False

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self.flag.armed = False

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any
    ) -> None:
        if not self._any_rank_received(trainer):
            return
        trainer.save_checkpoint(self.last_ckpt_path)
        raise Preempted(f"SIGTERM: saved {self.last_ckpt_path} at step {trainer.global_step}")

    def _any_rank_received(self, trainer: pl.Trainer) -> bool:
        if trainer.world_size == 1:
            return self.flag.received
        flag = torch.tensor(float(self.flag.received), device=trainer.strategy.root_device)
        return bool(trainer.strategy.reduce(flag, reduce_op="max").item() > 0)
