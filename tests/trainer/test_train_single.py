"""A real single-process run on ``synthetic_tiny``: run directory, result line, SIGTERM."""

import json
import signal

import pytest
import torch

from tests.support.trainer_launch import TINY, base_env, start
from tests.support.wait import wait_until
from trainer.contract import exit_codes
from trainer.contract.result import RESULT_LINE_PREFIX, RESULT_RECORD_FILE, parse_result_record
from trainer.models.lightning_module import MultiDatasetModel
from trainer.run import weights_digest


@pytest.mark.slow
def test_tiny_run_writes_checkpoints_metrics_and_one_result_line(tmp_path, tiny_data):
    args = [*TINY, "--run_dir", "run", "--data_root", str(tiny_data), "--max_epochs", "2"]
    proc = start(["train", *args, "--batch_size", "64"], base_env(OMP_NUM_THREADS="1"), tmp_path)
    assert proc.wait(timeout=180) == 0, proc.output
    run = tmp_path / "run"
    result = proc.result()
    assert json.loads((run / "metrics.json").read_text()) == result
    assert result["best_val_bps_overall"] > 0 and result["final_val_bps_overall"] > 0
    assert result["epochs"] == 2 and result["world_size"] == 1 and result["model"] == "res_small"
    assert set(result["val_bps"]) == {"tiny_back", "tiny_gabor"}
    assert result["oracle_bps_overall"] > result["best_val_bps_overall"]
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [0, 1]
    assert history[-1]["global_step"] == result["global_step"] > 0
    assert sum(line.startswith("COREJOB_EPOCH") for line in proc.lines) == 2
    assert (run / "metrics.csv").is_file()
    assert proc.lines[-1].startswith(RESULT_LINE_PREFIX)  # the very last line
    # The ledger record next to the checkpoints: what a cluster's results read after the job.
    job, recorded = parse_result_record(json.loads((run / RESULT_RECORD_FILE).read_text()))
    assert recorded == result and job["metadata"]["name"] == "run"
    assert job["status"]["conditions"][-1]["type"] == "Succeeded"
    assert job["metadata"]["labels"] == {"corejob.dev/model": "res_small",
                                         "corejob.dev/dataset": "synthetic_tiny"}  # fmt: skip
    assert result["training_limits"] == {
        "time_budget_minutes": None, "time_budget_clock": None, "max_epochs": 2,
        "steps_per_epoch": None, "accelerator": "cpu", "cores": 1,
    }  # fmt: skip
    last = run / "checkpoints" / "last.ckpt"
    assert {p.name for p in (run / "checkpoints").glob("epoch*.ckpt")}
    # The final checkpoint alone rebuilds the final model, bit for bit.
    assert (
        weights_digest(MultiDatasetModel.load_from_corejob_checkpoint(last))
        == (result["weights_sha256"])
    )


@pytest.mark.slow
def test_sigterm_saves_a_complete_last_checkpoint_and_exits_143(tmp_path, tiny_data):
    args = [*TINY, "--run_dir", "run", "--data_root", str(tiny_data), "--max_epochs", "200"]
    proc = start(args, base_env(OMP_NUM_THREADS="1"), tmp_path)
    # The epoch-1 heartbeat is printed while SIGTERM handling is armed; the handler only
    # records the signal and the next batch end acts on it. Signalled as soon as the line
    # is seen, that is an early batch of the next epoch: no sleep "into the next epoch".
    proc.wait_for_line("COREJOB_EPOCH", timeout=180)
    proc.signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == exit_codes.PREEMPTED, proc.output
    checkpoint = torch.load(tmp_path / "run/checkpoints/last.ckpt", weights_only=False)
    steps_per_epoch = checkpoint["loops"]["fit_loop"]["epoch_loop.batch_progress"]
    assert checkpoint["global_step"] > 0 and not steps_per_epoch["is_last_batch"]
    heartbeats = [line for line in proc.lines if line.startswith("COREJOB_EPOCH")]
    last_heartbeat_step = int(heartbeats[-1].split(" step=")[1].split()[0])
    assert checkpoint["global_step"] > last_heartbeat_step  # SIGTERM's save, not an epoch end
    assert {"state_dict", "optimizer_states", "lr_schedulers", "loops", "corejob"} <= set(
        checkpoint
    )
    assert not any(line.startswith(RESULT_LINE_PREFIX) for line in proc.lines)


def test_sigterm_during_startup_exits_143_at_once(tmp_path):
    proc = start([*TINY, "--run_dir", "run"], base_env(), tmp_path)
    # Not a fixed sleep hoped to land "while torch is still importing": wait until the CLI
    # has installed its SIGTERM handler (its first act, before torch is imported), then
    # signal at once; the message proves the signal arrived before training began.
    wait_until(proc.sigterm_handler_installed, 30, "the trainer to install its SIGTERM handler")
    proc.signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == exit_codes.PREEMPTED, proc.output
    assert "preempted: received signal 15 outside the training loop" in proc.output


def test_weights_digest_covers_zero_dim_buffers_and_sees_every_change():
    """BatchNorm keeps a 0-dim ``num_batches_tracked``: the digest must hash it, not crash."""
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    before = weights_digest(net)
    net[1].num_batches_tracked += 1
    assert weights_digest(net) != before
