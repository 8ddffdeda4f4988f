"""Random numbers that are a function of the training step, so a resumed run repeats them.

Training draws random numbers (the Gaussian readout samples positions, augmentation
jitters stimuli). Their generators' states are not in a checkpoint, so a run resumed
mid-epoch would draw different numbers than the uninterrupted run and end with different
weights. Re-seeding every generator before each training batch from (seed, rank, global
step) makes the draws depend only on where training is, not on how it got there: a run
preempted and resumed any number of times ends bit-identical to one that never was.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch


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
