"""Time budget: the planning arithmetic, and runs that stop at the planned step."""

import time

import pytest
import pytorch_lightning as pl
import torch

from tests.support.trainer_fakes import FakeCoreModel, loader, quiet_trainer
from trainer.callbacks.time_budget import TimeBudgetCallback, batches_that_fit, validations_between
from trainer.optim.schedulers import LinearWarmupCosineAnnealingLR


def test_validations_between_counts_epoch_ends_and_a_final_partial_epoch():
    assert validations_between(done=0, total=200, per_epoch=100) == 2
    assert validations_between(done=0, total=250, per_epoch=100) == 3  # + final at 250
    assert validations_between(done=100, total=150, per_epoch=100) == 1
    assert validations_between(done=150, total=150, per_epoch=100) == 0


def test_batches_that_fit_charges_every_validation():
    # 10 ms per batch, 0.5 s per validation, 100-batch epochs, 2.6 s left:
    # 200 batches (2 s) + 2 validations (1 s) = 3 s is too much; 150 + 2 vals = 2.5 s fits,
    # 160 + 2 = 2.6 fits exactly, 161 does not.
    fit = batches_that_fit(2.6, 0.01, 0.5, done=0, per_epoch=100, cap=10_000)
    assert fit == 160
    # Without validation cost the whole budget goes to batches.
    assert batches_that_fit(2.6, 0.01, 0.0, done=0, per_epoch=100, cap=10_000) == 260
    # The trainer's own limit wins; nothing left stops now; one batch runs at least.
    assert batches_that_fit(100.0, 0.01, 0.0, done=0, per_epoch=100, cap=300) == 300
    assert batches_that_fit(-1.0, 0.01, 0.5, done=120, per_epoch=100, cap=10_000) == 120
    assert batches_that_fit(0.0, 0.01, 0.5, done=0, per_epoch=100, cap=10_000) == 1


class FakeClock:
    """The budget's clock, advanced by the model: timings exact whatever the machine load."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class ClockedModel(FakeCoreModel):
    """A training batch costs ``batch_s(batch_idx)``, a validation batch 0.1 s."""

    def __init__(self, clock: FakeClock, batch_s=lambda batch_idx: 0.05):
        super().__init__()
        self.clock, self.batch_s = clock, batch_s

    def training_step(self, batch, batch_idx):
        self.clock.now += self.batch_s(batch_idx)
        return super().training_step(batch, batch_idx)

    def validation_step(self, batch, batch_idx):
        self.clock.now += 0.1
        return super().validation_step(batch, batch_idx)

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=0.01)
        sched = LinearWarmupCosineAnnealingLR(opt, warmup_steps=2, total_steps=8 * 1000)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


class ValidationSteps(pl.Callback):
    """Records the global step of every (non-sanity) validation pass."""

    def __init__(self):
        self.steps: list[int] = []

    def on_validation_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self.steps.append(trainer.global_step)


def clocked_budget(seconds: float, clock: FakeClock, **kwargs) -> TimeBudgetCallback:
    budget = TimeBudgetCallback(budget_minutes=seconds / 60, **kwargs)
    budget._now = clock
    return budget


def record_plans(plan, budget: TimeBudgetCallback, plans: list[int]):
    """Wraps ``budget._plan`` to record each decision."""

    def recording(*args, **kwargs):
        plan(*args, **kwargs)
        plans.append(budget.stop_after_batches)

    return recording


def test_budget_stops_at_the_planned_step_validates_it_and_ends_the_schedule(tmp_path):
    clock = FakeClock()
    budget = clocked_budget(4.01, clock, benchmark_steps=4, safety=1.0)
    validations = ValidationSteps()
    trainer = quiet_trainer(tmp_path, max_epochs=1000, callbacks=[budget, validations])
    # 8 batches of 0.05 s per epoch, validation 2 batches = 0.2 s. The largest stop that
    # fits 4.01 s: 52 batches (2.6 s) + 6 epoch-end validations + 1 final (1.4 s) = 4.0 s.
    plans = []
    budget._plan = record_plans(budget._plan, budget, plans)
    trainer.fit(ClockedModel(clock), train_dataloaders=loader(), val_dataloaders=loader(16))
    assert budget.validation_estimate_s == pytest.approx(0.2)  # from the 2 sanity batches
    assert plans[0] == 52  # so the first plan, from 4 batches, was already right
    assert budget.stop_after_batches == 52
    assert trainer.global_step == 52  # stopped there, inside epoch 7
    assert validations.steps == [8, 16, 24, 32, 40, 48, 52]  # the final weights validated
    assert clock.now - budget.start <= 4.01  # (the clock ran before: sanity validation)
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert scheduler.total_steps == 52  # the cosine ends where training ends


def test_a_plan_past_the_trainer_limit_keeps_the_limit(tmp_path):
    clock = FakeClock()
    budget = clocked_budget(600.0, clock, benchmark_steps=2)
    trainer = quiet_trainer(tmp_path, max_epochs=3, callbacks=[budget])
    trainer.fit(ClockedModel(clock), train_dataloaders=loader(), val_dataloaders=loader(16))
    assert budget.stop_after_batches == 3 * 8
    assert trainer.global_step == 3 * 8


def test_a_wrong_plan_is_cut_at_the_hard_limit(tmp_path):
    clock = FakeClock()
    budget = clocked_budget(1.0, clock, benchmark_steps=2)
    trainer = quiet_trainer(tmp_path, max_epochs=5, callbacks=[budget], limit_val_batches=0)
    # 5 ms per batch while the budget benchmarks the first ones, 50 ms afterwards.
    model = ClockedModel(clock, batch_s=lambda batch_idx: 0.005 if batch_idx < 4 else 0.05)
    trainer.fit(model, train_dataloaders=loader(n=8 * 200))  # 200 batches per epoch
    assert budget.stop_after_batches >= 190  # ~0.97 s / 5 ms: what the fast batches promised
    # Checked every 10 batches: 0.82 s after batch 20, 1.32 s after batch 30 -> stop.
    assert trainer.global_step == 30


def test_cpu_clock_counts_process_time_not_sleep():
    budget = TimeBudgetCallback(budget_minutes=1.0, clock="cpu")
    before = budget._now()
    # The sleep is the workload measured here, not synchronisation: 0.2 s of wall time
    # that uses no CPU (a fake clock would only test itself). The margin is wide: any
    # reading under half the sleep shows it was not counted.
    time.sleep(0.2)
    assert budget._now() - before < 0.1
