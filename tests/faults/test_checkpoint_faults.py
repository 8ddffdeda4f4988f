"""Checkpoint faults: a kill during a save, SIGTERM on an epoch's last batch, the interval save.

The saves go through the real ``AtomicCheckpointIO`` and ``MidEpochCheckpoint``; the model
is the small stand-in of ``tests/support/trainer_fakes.py`` so each case runs in seconds.
The end-to-end case (a real trainer preempted mid-epoch, resumed, compared with an
uninterrupted run) is ``test_preempted_run_resumes_mid_epoch_without_replay``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from tests.support.trainer_fakes import FakeCoreModel, loader, quiet_trainer
from tests.support.wait import wait_until
from trainer.callbacks.checkpointing import MidEpochCheckpoint
from trainer.callbacks.heartbeat import EpochHeartbeat
from trainer.checkpoints import (
    TEMPORARY_SUFFIX,
    AtomicCheckpointIO,
    checkpoint_problem,
    remove_stale_temporaries,
)
from trainer.contract.preemption import Preempted, SigtermFlag

BATCHES = 8  # loader(64, 8)


class SignalAt(pl.Callback):
    """Plays the SIGTERM handler: marks the flag received at one (epoch, batch)."""

    def __init__(self, flag: SigtermFlag, epoch: int, batch_idx: int) -> None:
        self.flag, self.at = flag, (epoch, batch_idx)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if (trainer.current_epoch, batch_idx) == self.at:
            self.flag.received = True


class FakeClock(pl.Callback):
    """A clock that advances ``step_s`` per training batch: the interval without waiting."""

    def __init__(self, step_s: float) -> None:
        self.now, self.step_s = 0.0, step_s

    def __call__(self) -> float:
        return self.now

    def on_train_batch_start(self, *args) -> None:
        self.now += self.step_s


def fit(tmp_path: Path, *callbacks: pl.Callback, max_epochs: int = 2) -> pl.Trainer:
    trainer = quiet_trainer(
        tmp_path, max_epochs=max_epochs, callbacks=list(callbacks), plugins=[AtomicCheckpointIO()]
    )
    trainer.fit(FakeCoreModel(), train_dataloaders=loader(), val_dataloaders=loader())
    return trainer


def saved(path: Path) -> dict:
    return torch.load(path, weights_only=False)


def test_sigterm_mid_epoch_saves_at_once_without_that_epochs_validation(tmp_path):
    flag, heartbeat = SigtermFlag(), EpochHeartbeat()
    last = tmp_path / "last.ckpt"
    with pytest.raises(Preempted, match="SIGTERM: saved"):
        fit(tmp_path, heartbeat, SignalAt(flag, 1, 2), MidEpochCheckpoint(flag, last))
    assert saved(last)["global_step"] == BATCHES + 3
    assert [record["epoch"] for record in heartbeat.history] == [0]


def test_sigterm_on_the_last_batch_validates_that_epoch_before_stopping(tmp_path):
    flag, heartbeat = SigtermFlag(), EpochHeartbeat()
    last = tmp_path / "last.ckpt"
    with pytest.raises(Preempted, match="last batch, after validation"):
        fit(tmp_path, heartbeat, SignalAt(flag, 1, BATCHES - 1), MidEpochCheckpoint(flag, last))
    checkpoint = saved(last)
    assert checkpoint["global_step"] == 2 * BATCHES
    assert [r["epoch"] for r in heartbeat.history] == [0, 1]
    assert "val_bps_overall" in heartbeat.history[1]
    (state,) = [v for k, v in checkpoint["callbacks"].items() if "EpochHeartbeat" in k]
    assert [r["epoch"] for r in state["history"]] == [0, 1]  # the resumed run will know


def test_interval_saves_bound_the_work_a_kill_can_take(tmp_path):
    clock = FakeClock(step_s=40.0)
    last = tmp_path / "last.ckpt"
    every = MidEpochCheckpoint(SigtermFlag(), last, every_minutes=1.0, clock=clock)
    fit(tmp_path, clock, every, max_epochs=1)
    # 40 s per batch, 60 s interval: saves after batches 2, 4 and 6 (batch 8 ends the epoch).
    assert every.interval_saves == 3
    assert saved(last)["global_step"] == 6
    every_off = MidEpochCheckpoint(SigtermFlag(), tmp_path / "off.ckpt", every_minutes=None)
    fit(tmp_path, FakeClock(step_s=1e6), every_off, max_epochs=1)
    assert every_off.interval_saves == 0 and not (tmp_path / "off.ckpt").exists()


SAVE_FOREVER = textwrap.dedent(
    """
    import sys, torch
    from trainer.checkpoints import AtomicCheckpointIO
    io, path = AtomicCheckpointIO(), sys.argv[1]
    step = 0
    while True:
        step += 1
        io.save_checkpoint({"state_dict": {"w": torch.full((40_000_000,), step)}}, path)
        print(step, flush=True)
    """
)


@pytest.mark.slow
def test_a_kill_during_a_save_leaves_the_previous_checkpoint_whole(tmp_path):
    last = tmp_path / "last.ckpt"
    saver = subprocess.Popen(
        [sys.executable, "-c", SAVE_FOREVER, str(last)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert saver.stdout is not None and saver.stdout.readline().strip() == "1"
        temporaries = lambda: list(tmp_path.glob(f".*{TEMPORARY_SUFFIX}"))  # noqa: E731
        wait_until(temporaries, 60, "the second save to be under way")
        saver.send_signal(signal.SIGKILL)
        saver.wait(timeout=30)
    finally:
        saver.kill()
    assert checkpoint_problem(last) is None  # a whole checkpoint, old or new
    assert saved(last)["state_dict"]["w"][0] >= 1
    assert remove_stale_temporaries(tmp_path) and not temporaries()
