"""A real trainer preempted mid-epoch resumes with the batches it had not seen yet.

Three runs of the same seed on ``synthetic_tiny``: one uninterrupted, one SIGTERMed inside
its second epoch and started again with the same command (what the operator does under
``restartPolicy: ExitCode``). The resumed run must end at the same global step (a replay
would add steps, a skip would lose some), with the same weights, the whole history and
``attempts == 2``.
"""

from __future__ import annotations

import json
import signal

import pytest
import torch

from tests.support.trainer_launch import TINY, base_env, start
from trainer.contract import exit_codes

STEPS = 10
EPOCHS = 2


def train_args(tiny_data, run: str) -> list[str]:
    return [
        *TINY, "--run_dir", run, "--data_root", str(tiny_data), "--max_epochs", str(EPOCHS),
        "--steps_per_epoch", str(STEPS), "--batch_size", "32", "--seed", "3",
    ]  # fmt: skip


@pytest.mark.slow
def test_preempted_run_resumes_mid_epoch_without_replay(tmp_path, tiny_data):
    env = base_env(OMP_NUM_THREADS="1")
    clean = start(train_args(tiny_data, "clean"), env, tmp_path)
    assert clean.wait(timeout=300) == 0, clean.output
    expected = clean.result()

    first = start(train_args(tiny_data, "run"), env, tmp_path)
    first.wait_for_line("COREJOB_EPOCH", timeout=180)  # epoch 0 done: SIGTERM lands in epoch 1
    first.signal(signal.SIGTERM)
    assert first.wait(timeout=120) == exit_codes.PREEMPTED, first.output
    saved = torch.load(tmp_path / "run/checkpoints/last.ckpt", weights_only=False)
    assert STEPS < saved["global_step"] <= EPOCHS * STEPS
    position = saved["MultiDatasetDM"]["train_position"]
    assert position == [1, saved["global_step"] - STEPS, 32]

    second = start(train_args(tiny_data, "run"), env, tmp_path)
    assert second.wait(timeout=300) == 0, second.output
    assert "not resumable" not in second.output
    result = second.result()
    assert result["global_step"] == expected["global_step"] == EPOCHS * STEPS
    assert result["weights_sha256"] == expected["weights_sha256"]
    assert result["attempts"] == 2 and expected["attempts"] == 1
    history = json.loads((tmp_path / "run/history.json").read_text())
    assert [record["epoch"] for record in history] == list(range(EPOCHS))
    # Both attempts count: the first attempt's wall time up to its checkpoint is carried.
    state = next(v for k, v in saved["callbacks"].items() if "EpochHeartbeat" in k)
    assert result["wall_time_s"] > state["wall_time_s"] > 0
