"""The video family preempted mid-epoch resumes as the V1 family does (tests/faults/test_resume.py).

Same seed three times on ``synthetic_views_tiny``: uninterrupted; SIGTERMed inside its
second epoch; started again with the same command. The resumed run ends at the same
step with bit-identical weights, the whole history, ``attempts == 2``, and its best
checkpoint still the best epoch's (the checkpoint callback's best score survives).
"""

from __future__ import annotations

import json
import signal

import pytest
import torch

from tests.support.trainer_launch import base_env, start
from trainer.contract import exit_codes

STEPS, EPOCHS = 16, 2


def train_args(data, run: str) -> list[str]:
    return [
        "--model_config", "r3d_small", "--dataset_configs_path", "synthetic_views_tiny",
        "--run_dir", run, "--data_root", str(data), "--max_epochs", str(EPOCHS),
        "--steps_per_epoch", str(STEPS), "--batch_size", "8", "--seed", "5",
        "--loss_function", "focal", "--progress_every_seconds", "0",
    ]  # fmt: skip


@pytest.mark.slow
def test_preempted_video_run_resumes_mid_epoch_with_identical_weights(tmp_path):
    env = base_env(OMP_NUM_THREADS="1")
    data = tmp_path / "data"
    clean = start(train_args(data, "clean"), env, tmp_path)
    assert clean.wait(timeout=300) == 0, clean.output
    expected = clean.result()

    first = start(train_args(data, "run"), env, tmp_path)
    first.wait_for_line("COREJOB_EPOCH", timeout=180)  # epoch 0 done: SIGTERM lands in epoch 1
    first.signal(signal.SIGTERM)
    assert first.wait(timeout=120) == exit_codes.PREEMPTED, first.output
    saved = torch.load(tmp_path / "run/checkpoints/last.ckpt", weights_only=False)
    assert STEPS < saved["global_step"] <= EPOCHS * STEPS
    assert saved["VideoDM"]["train_position"][:2] == [1, saved["global_step"] - STEPS]

    second = start(train_args(data, "run"), env, tmp_path)
    assert second.wait(timeout=300) == 0, second.output
    result = second.result()
    assert result["global_step"] == expected["global_step"] == EPOCHS * STEPS
    assert result["weights_sha256"] == expected["weights_sha256"]
    assert result["attempts"] == 2 and expected["attempts"] == 1
    assert result["best_metric"] == expected["best_metric"]
    assert result["best_checkpoint"].endswith(f"macc{result['best_metric']:.4f}.ckpt")
    history = json.loads((tmp_path / "run/history.json").read_text())
    assert [record["epoch"] for record in history] == list(range(EPOCHS))
    assert all("val_acc/shape" in record for record in history)
