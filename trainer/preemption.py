"""SIGTERM = preemption: save a complete ``last.ckpt``, then exit 143 (docs/CONTRACT.md).

Kubernetes sends SIGTERM to every container of an evicted pod and SIGKILLs it after the
grace period. A handler may run at any bytecode boundary, in the middle of a DDP
collective, so it only *records* the signal. The :class:`PreemptionCheckpoint` callback
turns it into action at a point where every rank is between optimizer steps: the ranks
agree (max all-reduce, so a signal seen by any one rank stops all of them at the same
step), all call ``trainer.save_checkpoint`` (rank 0 writes, atomically), and
:class:`Preempted` unwinds to the CLI, which exits 143.

Lightning installs its own SIGTERM handler when ``fit`` starts; it broadcasts from
inside the handler, which can interleave with a collective already in flight. We
re-install ours from ``on_train_start`` (after Lightning's), so ours is the one that runs.
Outside training (setup, data generation, the final report) there is nothing new worth
saving, so the handler raises :class:`Preempted` at once.
"""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType
from typing import Any

import pytorch_lightning as pl
import torch

from trainer import exit_codes


class Preempted(BaseException):
    """Raised to unwind a preempted run; a BaseException so generic handlers don't eat it."""

    exit_code = exit_codes.PREEMPTED


class SigtermFlag:
    """Records SIGTERM; raises immediately unless a training loop has armed it."""

    def __init__(self) -> None:
        self.received = False
        self.armed = False

    def handle(self, signum: int, frame: FrameType | None) -> None:
        self.received = True
        if not self.armed:
            raise Preempted(f"received signal {signum} outside the training loop")

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self.handle)


class PreemptionCheckpoint(pl.Callback):
    """Checks the SIGTERM flag after every training batch; saves ``last.ckpt`` and stops."""

    def __init__(self, flag: SigtermFlag, last_ckpt_path: Path) -> None:
        self.flag = flag
        self.last_ckpt_path = Path(last_ckpt_path)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.flag.armed = True
        self.flag.install()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.flag.armed = False
        if self.flag.received:
            raise Preempted("received SIGTERM at the end of training")

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
        local = torch.tensor(1.0 if self.flag.received else 0.0, device=pl_module_device(trainer))
        if trainer.world_size > 1:
            local = trainer.strategy.reduce(local, reduce_op="max")
        return bool(local.item() > 0)


def pl_module_device(trainer: pl.Trainer) -> torch.device:
    """The device collectives must use (gloo: cpu, nccl: the rank's GPU)."""
    return trainer.strategy.root_device
