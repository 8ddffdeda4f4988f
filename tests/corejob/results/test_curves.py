"""`corejob plot JOB`: curves from the progress records every backend can read."""

from __future__ import annotations

import json
from pathlib import Path

from corejob.backends.local.backend import LocalBackend
from corejob.job.state import summarize
from corejob.results.curves import curves_from_log
from tests.support.local_jobs import (
    no_leftover_jobs,  # noqa: F401  (autouse)
    script_job,
)
from tests.support.wait import wait_until
from trainer.contract.progress import progress_line
from trainer.contract.result import result_line


def record(step: int, loss: float, val_epoch: int | None = None, attempt: int = 1, **extra):
    return progress_line(
        {"time": "2026-12-02T00:00:00.000Z", "phase": "train", "step": step,
         "train_loss": loss, "samples_per_s": 100.0 + step, "val_epoch": val_epoch,
         "attempt": attempt, **extra}
    )  # fmt: skip


def test_points_per_step_validations_once_and_the_oracle():
    lines = [
        "some log line",
        record(1, 0.9),
        record(10, 0.8),
        record(20, 0.7, val_epoch=1, val_bps_overall=0.2, val_bps={"a": 0.3}),
        record(30, 0.6, val_epoch=1, val_bps_overall=0.2, val_bps={"a": 0.3}),  # same val
        "[master-0] " + record(20, 0.65, val_epoch=1, attempt=2, val_bps_overall=0.25),
        result_line({"oracle_bps_overall": 1.0, "oracle_bps": {"a": 1.2}}),
    ]
    curves = curves_from_log(lines)
    assert curves.train_loss == [(1, 0.9), (10, 0.8), (20, 0.65), (30, 0.6)]  # restart wins
    assert curves.val_bps == {"overall": [(20, 0.25)], "a": [(20, 0.3)]}
    assert curves.oracle == {"overall": 1.0, "a": 1.2}
    assert curves.samples_per_s[0] == (1, 101.0)


def test_nothing_to_draw_without_progress_records():
    assert curves_from_log(["COREJOB_PROGRESS {broken", "hello"]).empty


def test_plot_a_local_job_and_refuse_one_without_progress(tmp_path: Path, corejob):
    lines = [record(s, 1.0 / s, val_epoch=s // 10 or None, val_bps_overall=s / 100)
             for s in range(1, 40, 3)] + [result_line({"oracle_bps_overall": 0.5})]  # fmt: skip
    program = "import os\nif os.environ['RANK'] == '0':\n" + "".join(
        f"    print({json.dumps(line)})\n" for line in lines
    )
    backend = LocalBackend(tmp_path)
    backend.submit(script_job("trained", program))
    backend.submit(script_job("silent", "pass"))
    for name in ("trained", "silent"):
        wait_until(lambda n=name: summarize(backend.get(n)).state.finished, 30, f"{name} ends")
    where = ("--backend", "local", "--runs-dir", str(tmp_path))

    out = tmp_path / "plots" / "trained.png"
    drawn = corejob("plot", "trained", "--out", str(out), *where)
    assert drawn.code == 0 and drawn.out == f"wrote {out}\n"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000

    refused = corejob("plot", "silent", *where)
    assert refused.code == 9
    assert "job silent: no COREJOB_PROGRESS record in its log yet" in refused.err
