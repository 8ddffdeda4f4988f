"""A diverged run stops with one clear line at the next check, never a segfault."""

from __future__ import annotations

import pytest
import torch

from tests.support.trainer_fakes import FakeCoreModel, loader, quiet_trainer
from trainer.callbacks.divergence import DivergenceGuard
from trainer.contract import exit_codes
from trainer.contract.errors import TrainingDiverged
from trainer.models.components.readout import DynamicGaussianReadout


class BlowsUp(FakeCoreModel):
    """Its loss is NaN from batch 30 on (as after an exploding step)."""

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        return loss * float("nan") if self.global_step >= 30 else loss


def test_nan_loss_stops_training_at_the_next_check(tmp_path):
    guard = DivergenceGuard(every=10)
    trainer = quiet_trainer(tmp_path, max_epochs=100, callbacks=[guard], limit_val_batches=0)
    with pytest.raises(TrainingDiverged) as info:
        trainer.fit(BlowsUp(), train_dataloaders=loader())
    assert trainer.global_step == 31  # batch 30 (counted across epochs) is NaN and checked
    message = str(info.value)
    assert "\n" not in message and "nan at step 31" in message and "--learning_rate" in message
    assert info.value.exit_code == exit_codes.UNEXPECTED_ERROR  # retrying cannot help


def test_finite_training_is_untouched(tmp_path):
    trainer = quiet_trainer(tmp_path, max_epochs=2, callbacks=[DivergenceGuard(every=1)])
    trainer.fit(FakeCoreModel(), train_dataloaders=loader(), val_dataloaders=loader(16))
    assert trainer.global_step == 16


def test_gaussian_readout_confines_nan_positions_to_their_unit():
    """A NaN position (a diverged step) poisons only its own unit, which the guard then
    reports; it never reads out of bounds (the mask is computed, not sampled)."""
    readout = DynamicGaussianReadout(4, 3, initial_std=1.0, initial_mean_scale=0.1)
    with torch.no_grad():
        readout.mean[0] = float("nan")
    for training in (True, False):
        readout.train(training)
        out = readout(torch.randn(2, 4, 8, 8))
        assert out.shape == (2, 3) and torch.isnan(out[:, 0]).all()
        assert torch.isfinite(out[:, 1:]).all()
