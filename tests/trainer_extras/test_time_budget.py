"""Time budget: the arithmetic, and a run that shortens itself and its LR schedule."""

import time

import torch

from tests.trainer_extras.fakes import FakeCoreModel, loader, quiet_trainer
from trainer.schedulers import LinearWarmupCosineAnnealingLR
from trainer.time_budget import TimeBudgetCallback, epochs_that_fit


def test_epochs_that_fit():
    assert epochs_that_fit(budget_s=60, elapsed_s=0, epoch_s=10, epochs_done=0) == 6
    assert epochs_that_fit(budget_s=60, elapsed_s=35, epoch_s=10, epochs_done=3) == 5
    assert epochs_that_fit(budget_s=60, elapsed_s=59, epoch_s=10, epochs_done=0) == 1
    assert epochs_that_fit(budget_s=60, elapsed_s=70, epoch_s=10, epochs_done=4) == 4


class SlowModel(FakeCoreModel):
    """Every step takes ~50 ms, so an 8-step epoch costs ~0.4-0.5 s."""

    def training_step(self, batch, batch_idx):
        time.sleep(0.05)
        return super().training_step(batch, batch_idx)

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=0.01)
        sched = LinearWarmupCosineAnnealingLR(opt, warmup_steps=2, total_steps=8 * 1000)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def test_budget_sets_max_epochs_and_stretches_the_schedule(tmp_path):
    budget_s = 4.0
    budget = TimeBudgetCallback(budget_minutes=budget_s / 60, benchmark_steps=4, safety=1.0)
    trainer = quiet_trainer(tmp_path, max_epochs=1000, callbacks=[budget])
    started = time.monotonic()
    trainer.fit(SlowModel(), train_dataloaders=loader(), val_dataloaders=loader(16))
    took = time.monotonic() - started
    # Timings depend on machine load; what must hold is consistency with the measurements.
    assert 1 <= budget.decided_epochs < 1000
    assert trainer.current_epoch == budget.decided_epochs
    assert took < budget_s + max(budget.epoch_times) + 5.0, budget.epoch_times
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert scheduler.total_steps == max(3, budget.decided_epochs * 8)


def test_an_epoch_longer_than_the_budget_is_cut_at_the_hard_limit(tmp_path):
    budget = TimeBudgetCallback(budget_minutes=1.0 / 60, benchmark_steps=2)
    trainer = quiet_trainer(tmp_path, max_epochs=5, callbacks=[budget], limit_val_batches=0)
    trainer.fit(SlowModel(), train_dataloaders=loader(n=8 * 200))  # 200 steps of >= 50 ms
    assert 10 <= trainer.global_step < 200


def test_cpu_clock_counts_process_time_not_sleep():
    budget = TimeBudgetCallback(budget_minutes=1.0, clock="cpu")
    before = budget._now()
    time.sleep(0.2)
    assert budget._now() - before < 0.1
