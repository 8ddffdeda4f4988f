"""The real trainer on ``synthetic_tiny`` prints progress records a controller can read.

What a user of ``kubectl logs`` / ``corejob logs`` sees: life within seconds of the first
step (long before the first epoch line), then a record every ``--progress_every_seconds``
and a final one whose numbers are the result's. Under DDP only rank 0 prints them.
"""

from __future__ import annotations

import datetime
import itertools
import math

import pytest

from tests.support.trainer_launch import TINY, base_env, kill_all, launch_gang, start
from trainer.contract.progress import PROGRESS_LINE_PREFIX, parse_progress_line

pytestmark = pytest.mark.slow

EVERY_S = 0.5
SESSIONS = {"tiny_back", "tiny_gabor"}


def _args(data, *extra: str) -> list[str]:
    return [*TINY, "--run_dir", "run", "--data_root", str(data), "--batch_size", "64",
            "--max_epochs", "2", "--progress_every_seconds", str(EVERY_S), *extra]  # fmt: skip


def _seconds(record: dict) -> float:
    return datetime.datetime.fromisoformat(record["time"].replace("Z", "+00:00")).timestamp()


def test_progress_within_seconds_of_start_every_n_seconds_and_a_final_record(tmp_path, tiny_data):
    proc = start(["train", *_args(tiny_data)], base_env(OMP_NUM_THREADS="1"), tmp_path)
    try:
        # start-up (imports, data, model) on a busy 2-core machine, then one step
        proc.wait_for_line(PROGRESS_LINE_PREFIX.strip(), timeout=120)
        assert proc.wait(timeout=180) == 0, proc.output
    finally:
        kill_all([proc])
    result = proc.result()
    lines = proc.lines
    records = [parse_progress_line(line) for line in lines if line.startswith("COREJOB_PROGRESS")]
    assert all(records) and len(records) >= 3, proc.output

    first_progress = next(i for i, line in enumerate(lines) if line.startswith("COREJOB_PROG"))
    first_epoch = next(i for i, line in enumerate(lines) if line.startswith("COREJOB_EPOCH"))
    assert first_progress < first_epoch  # life is visible long before the first epoch ends
    first, *middle, final = records
    assert (first["phase"], first["step"], first["epoch"], first["max_epochs"]) == (
        "train", 1, 1, 2)  # fmt: skip
    assert first["total_steps"] == result["global_step"]  # the planned end is the real end
    gaps = [_seconds(b) - _seconds(a) for a, b in itertools.pairwise([first, *middle])]
    assert all(gap >= EVERY_S - 0.02 for gap in gaps), gaps  # never more often than asked

    for record in middle:
        assert record["phase"] in ("train", "validate")
        assert 1 < record["step"] <= result["global_step"]
        assert record["samples_per_s"] > 0 and 0 <= record["eta_s"] < 600
        assert math.isfinite(record["train_loss"])
    second_epoch = [r for r in middle if r["epoch"] == 2 and r["phase"] == "train"]
    assert second_epoch, proc.output
    for record in second_epoch:  # the last validation's numbers, per session
        assert record["val_epoch"] == 1 and set(record["val_bps"]) == SESSIONS
        assert record["val_bps_overall"] > 0

    assert (final["phase"], final["eta_s"], final["epoch"]) == ("end", 0.0, 2)
    assert final["step"] == final["total_steps"] == result["global_step"]
    assert final["val_bps_overall"] == pytest.approx(result["final_val_bps_overall"])
    assert final["val_bps"] == pytest.approx(result["val_bps"])
    assert (final["attempt"], final["world_size"]) == (1, 1)
    assert lines.index(next(line for line in lines if line.startswith("COREJOB_RESULT"))) > (
        lines.index(next(line for line in reversed(lines) if line.startswith("COREJOB_PROG")))
    )


def test_only_rank_zero_prints_progress(tmp_path, tiny_data):
    gang = launch_gang(_args(tiny_data, "--max_epochs", "1"), 2, tmp_path)
    try:
        codes = [proc.wait(timeout=240) for proc in gang]
    finally:
        kill_all(gang)
    assert codes == [0, 0], gang[0].output + gang[1].output
    rank0 = [parse_progress_line(line) for line in gang[0].lines]
    rank0 = [record for record in rank0 if record]
    assert rank0 and rank0[-1]["phase"] == "end" and rank0[-1]["world_size"] == 2
    assert not any(PROGRESS_LINE_PREFIX.strip() in line for line in gang[1].lines)
