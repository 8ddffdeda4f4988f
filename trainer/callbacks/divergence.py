"""Stop a diverged run at once, on every rank, with one clear line (exit 1, not retried)."""

from __future__ import annotations

from collections.abc import Mapping

import pytorch_lightning as pl
import torch

from trainer.contract.errors import TrainingDiverged

DIVERGENCE_CHECK_EVERY = 25  # batches; the check is a collective under DDP


class DivergenceGuard(pl.Callback):
    """Stops a diverged run with a clear error instead of training on NaN weights.

    Once the loss is NaN the weights are too, and everything after is wasted (or worse:
    NaN readout positions crash ``grid_sample``). The decision is collective (any rank),
    so every rank raises at the same step and none waits for the others until the DDP
    timeout. Checked every ``every`` batches: a host sync per step would slow GPUs.
    """

    def __init__(self, every: int = DIVERGENCE_CHECK_EVERY) -> None:
        self.every = every

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if trainer.fit_loop.epoch_loop.total_batch_idx % self.every:
            return
        loss = outputs["loss"] if isinstance(outputs, Mapping) else outputs
        if not isinstance(loss, torch.Tensor):
            return
        bad = not bool(torch.isfinite(loss.detach()).all())
        if trainer.strategy.reduce_boolean_decision(bad, all=False):
            raise TrainingDiverged(trainer.global_step, float(loss.detach().float().cpu()))
