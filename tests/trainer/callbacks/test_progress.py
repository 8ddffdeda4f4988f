"""``ProgressReporter``: rank 0's ``COREJOB_PROGRESS`` lines, on a fake clock.

A tiny Lightning run (the stand-in model, 2 epochs x 8 batches) where every training
batch takes exactly 3 s and every validation batch 1 s of a fake clock, so the schedule
of the lines and the numbers in them (throughput, ETA) are known exactly.
"""

from __future__ import annotations

import datetime
import io
import itertools
import math
from types import SimpleNamespace
from typing import Any

import pytest
import pytorch_lightning as pl

from tests.support.trainer_fakes import FakeCoreModel, loader, quiet_trainer
from trainer.callbacks.heartbeat import EpochHeartbeat
from trainer.callbacks.progress import ProgressReporter, planned_total_steps
from trainer.callbacks.time_budget import TimeBudgetCallback
from trainer.cli import parse_args
from trainer.contract.preemption import SigtermFlag
from trainer.contract.progress import parse_progress_line
from trainer.run import build_callbacks

TRAIN_BATCH_S, VAL_BATCH_S, EVERY_S = 3.0, 1.0, 10.0
BATCH, BATCHES = 8, 8  # loader(64, 8): 8 batches of 8 samples per epoch


class FakeClock(pl.Callback):
    """Time passes only when a batch ends: 3 s per training batch, 1 s per validation one.

    Listed before the reporter, so the reporter sees the time after the batch."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def wall(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.now, datetime.UTC)

    def on_train_batch_end(self, *_: Any) -> None:
        self.now += TRAIN_BATCH_S

    def on_validation_batch_end(self, trainer: pl.Trainer, *_: Any) -> None:
        if not trainer.sanity_checking:
            self.now += VAL_BATCH_S


def seconds(record: dict[str, Any]) -> float:
    return datetime.datetime.fromisoformat(record["time"].replace("Z", "+00:00")).timestamp()


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> list[dict[str, Any]]:
    """Every record of one fit (read-only in the tests)."""
    clock, out = FakeClock(), io.StringIO()
    reporter = ProgressReporter(
        EVERY_S, EpochHeartbeat(stream=io.StringIO()), out, clock, clock.wall
    )
    trainer = quiet_trainer(tmp_path_factory.mktemp("fit"), callbacks=[clock, reporter])
    trainer.fit(FakeCoreModel(), train_dataloaders=loader(), val_dataloaders=loader())
    lines = out.getvalue().splitlines()
    parsed = [parse_progress_line(line) for line in lines]
    assert all(parsed), lines  # every line the reporter writes is a well-formed record
    return parsed


def test_first_record_right_after_the_first_step(records):
    first = records[0]
    assert (first["phase"], first["step"]) == ("train", 1)
    assert (first["epoch"], first["max_epochs"]) == (1, 2)
    assert first["total_steps"] == 2 * BATCHES
    assert math.isfinite(first["train_loss"])
    assert first["eta_s"] is None  # one step is no rate yet
    assert first["val_bps_overall"] is None and first["val_bps"] == {}
    assert (first["attempt"], first["world_size"]) == (1, 1)
    assert seconds(first) == 1000.0 + TRAIN_BATCH_S


def test_a_record_every_n_seconds_never_sooner_then_a_final_one(records):
    *periodic, final = records
    gaps = [seconds(b) - seconds(a) for a, b in itertools.pairwise(periodic)]
    # 3 s batches: a line is due at the first batch end at least 10 s after the last one.
    assert gaps and all(EVERY_S <= gap < EVERY_S + TRAIN_BATCH_S for gap in gaps), gaps
    assert [r["step"] for r in periodic] == [1, 5, 8, 9, 13, 16]
    phases = ["train", "train", "validate", "train", "train", "validate"]
    assert [r["phase"] for r in periodic] == phases  # long validations report too
    assert (final["phase"], final["step"], final["epoch"], final["eta_s"]) == ("end", 16, 2, 0.0)


def test_throughput_eta_and_validation_numbers(records):
    by_step = {(r["step"], r["phase"]): r for r in records}
    step5 = by_step[(5, "train")]
    assert step5["samples_per_s"] == pytest.approx(BATCH / TRAIN_BATCH_S)
    # 4 steps in 12 s since step 1: 3 s per step, 11 steps to go
    assert step5["eta_s"] == pytest.approx(11 * 3.0)
    during_validation = by_step[(8, "validate")]
    assert during_validation["epoch"] == 1 and during_validation["val_bps_overall"] is None
    after = by_step[(9, "train")]
    assert after["val_epoch"] == 1 and math.isfinite(after["val_bps_overall"])
    # the gap around validation is not training time: throughput stays exact
    assert after["samples_per_s"] == pytest.approx(BATCH / TRAIN_BATCH_S)
    final = records[-1]
    assert final["val_epoch"] == 2 and final["val_bps_overall"] != after["val_bps_overall"]


def test_other_ranks_print_nothing():
    out = io.StringIO()
    reporter = ProgressReporter(EVERY_S, stream=out, clock=lambda: 0.0)
    rank1 = SimpleNamespace(is_global_zero=False, sanity_checking=False)
    reporter.on_train_batch_end(rank1, None, None, None, 0)
    reporter.on_validation_batch_end(rank1, None, None, None, 0)
    reporter.on_train_end(rank1, None)
    assert out.getvalue() == ""


def test_a_resumed_run_reports_its_attempt_and_earlier_validation():
    heartbeat = EpochHeartbeat(stream=io.StringIO())
    heartbeat.load_state_dict(
        {"history": [{"epoch": 0, "val_bps_overall": 0.25, "val_bps/a": 0.2}], "attempts": 1}
    )
    reporter = ProgressReporter(EVERY_S, heartbeat, io.StringIO(), lambda: 0.0)
    reporter.on_train_start(None, None)
    trainer = SimpleNamespace(
        global_step=40, max_epochs=3, current_epoch=1, callbacks=[], world_size=2,
        accumulate_grad_batches=1, estimated_stepping_batches=120,
    )  # fmt: skip
    record = reporter.record(trainer, "train", 0.0)
    assert record["attempt"] == 2
    assert (record["val_bps_overall"], record["val_bps"], record["val_epoch"]) == (
        0.25,
        {"a": 0.2},
        1,
    )
    assert (record["epoch"], record["total_steps"], record["world_size"]) == (2, 120, 2)


def test_total_steps_follow_a_time_budget_plan_in_optimizer_steps():
    budget = TimeBudgetCallback(5.0)
    trainer = SimpleNamespace(
        callbacks=[budget], accumulate_grad_batches=4, estimated_stepping_batches=400
    )
    assert planned_total_steps(trainer) == 400  # no plan yet: Lightning's estimate
    budget.stop_after_batches = 50  # the budget re-planned: 50 batches = 13 optimizer steps
    assert planned_total_steps(trainer) == 13
    trainer.callbacks, trainer.estimated_stepping_batches = [], float("inf")
    assert planned_total_steps(trainer) is None  # an endless run has no planned end


def test_the_trainer_reports_every_10_s_by_default_and_not_at_all_with_0(tmp_path):
    callbacks, heartbeat = build_callbacks(parse_args([]), tmp_path, SigtermFlag())
    (reporter,) = [c for c in callbacks if isinstance(c, ProgressReporter)]
    assert reporter.every_s == 10.0 and reporter.heartbeat is heartbeat  # attempts from it
    quiet, _ = build_callbacks(
        parse_args(["--progress_every_seconds", "0"]), tmp_path, SigtermFlag()
    )
    assert not any(isinstance(c, ProgressReporter) for c in quiet)
