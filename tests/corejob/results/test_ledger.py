"""``corejob results`` on the local backend: the ledger keeps a result after ``cancel``.

Stand-in jobs (a few lines of Python instead of the trainer, tests/support/local_jobs.py)
print a ``COREJOB_RESULT`` line, so a whole submit → finish → cancel → results round
takes seconds; the CLI runs in-process (the real ``main``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from corejob.backends.local.backend import LocalBackend
from corejob.cli import main
from corejob.job.state import JobState, summarize
from tests.support.local_jobs import (
    no_leftover_jobs,  # noqa: F401  (autouse)
    script_job,
)
from tests.support.wait import wait_until

SWEEP = "daily"
PROGRAM = """
import json, os
if os.environ["RANK"] == "0":
    print("COREJOB_RESULT " + json.dumps(PAYLOAD), flush=True)
"""
TRAINED = {"model": "res_small", "dataset": "synthetic_tiny", "best_val_bps_overall": 0.6059,
           "final_val_bps_overall": 0.6011, "oracle_bps_overall": 0.8123,
           "oracle_ratio_overall": 0.74, "epochs": 20, "global_step": 2000, "attempts": 1,
           "wall_time_s": 302.4, "world_size": 1}  # fmt: skip
SHORT = dict(TRAINED, best_val_bps_overall=0.0209, global_step=40, epochs=1, wall_time_s=31.0)


def finished_job(
    backend: LocalBackend, name: str, result: dict, program: str = PROGRAM
) -> JobState:
    """Submit a one-replica stand-in that prints ``result``; its final state."""
    job = script_job(name, program.replace("PAYLOAD", repr(result)), workers=0)
    job["metadata"]["labels"]["corejob.dev/sweep"] = SWEEP
    if "dataset" in result:  # its cell
        job["metadata"]["labels"]["corejob.dev/dataset"] = result["dataset"]
    assert backend.submit(job).created

    def state():
        current = summarize(backend.get(name))
        return current.state if current.state.finished else None

    return wait_until(state, 60, f"job {name} to finish", interval=0.1)


@pytest.fixture
def results(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch):
    """``corejob results ARGS --backend local`` in-process: (exit code, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["results", *args, "--backend", "local", "--runs-dir", str(tmp_path)])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_a_cancelled_job_keeps_its_row_and_merges_with_the_live_one(tmp_path: Path, results):
    backend = LocalBackend(tmp_path)
    assert finished_job(backend, "run-a", TRAINED) == JobState.SUCCEEDED
    assert not (tmp_path / "_results").exists()  # nobody has read the result yet
    assert backend.cancel("run-a")  # cancel records it before forgetting the job
    assert backend.get("run-a") is None and backend.list() == []
    ledger = json.loads((tmp_path / "_results" / "run-a.json").read_text())
    assert ledger["result"] == TRAINED
    assert ledger["job"]["metadata"]["labels"]["corejob.dev/sweep"] == SWEEP

    finished_job(backend, "run-b", SHORT)  # the same cell again, later
    code, out, _ = results("-o", "json")
    assert code == 0
    (latest,) = json.loads(out)
    assert (latest["job"], latest["runs"], latest["source"]) == ("run-b", 2, "live")
    assert latest["flags"] == ["under-trained"] and latest["best_val_bps"] == 0.0209

    code, out, _ = results("-o", "json", "--all", "--sweep", SWEEP)
    every = json.loads(out)
    assert [(r["job"], r["source"], r["state"], r["best_val_bps"]) for r in every] == [
        ("run-a", "ledger", "Succeeded", 0.6059),
        ("run-b", "live", "Succeeded", 0.0209),
    ]
    assert (tmp_path / "_results" / "run-b.json").exists()  # reading a result records it
    assert json.loads(results("-o", "json", "--sweep", "other")[1]) == []


def test_the_table_names_its_metric_and_marks_the_run(tmp_path: Path, results):
    backend = LocalBackend(tmp_path)
    finished_job(backend, "run-a", TRAINED)
    backend.result("run-a")  # in the ledger too: still one row, the live one
    finished_job(backend, "run-b", SHORT)

    code, out, err = results("--plot", "--csv", "r.csv")

    assert code == 0, err
    header, row, *rest = out.splitlines()
    assert re.split(" {2,}", header)[:4] == ["model", "dataset", "best val bits/spike", "final"]
    for name in ("oracle", "ratio", "epochs", "steps", "wall", "attempts", "state", "runs"):
        assert f" {name} " in header, name
    assert row.split() == ["res_small", "synthetic_tiny", "0.0209", "0.6011", "0.8123",
                           "0.740", "1", "40", "31s", "1", "Succeeded", "2", "under-trained",
                           "run-b"]  # fmt: skip
    assert any(line.startswith("flags: under-trained = fewer than 100") for line in rest)
    assert (tmp_path / f"results-{SWEEP}.png").read_bytes()[:4] == b"\x89PNG"
    assert f"wrote results-{SWEEP}.png" in err
    assert (tmp_path / "r.csv").read_text().splitlines()[1].startswith("run-b,res_small,")

    code, out, _ = results("--min-steps", "10", "-o", "yaml")
    assert code == 0 and "flags: []" in out and "job: run-b" in out


def test_a_bad_min_steps_is_a_usage_error(results):
    code, _, err = results("--min-steps", "-1")
    assert code == 2 and "--min-steps must be >= 0" in err


def test_a_failed_job_is_a_row_with_its_state_and_exit_code(tmp_path: Path, results):
    backend = LocalBackend(tmp_path)
    assert finished_job(backend, "broken", {}, "import sys; sys.exit(3)") == JobState.FAILED

    code, out, _ = results()

    assert code == 0
    header, row, _, *legend = out.splitlines()
    names, values = re.split(" {2,}", header.strip()), re.split(" {2,}", row.strip())
    cells = dict(zip(names, values, strict=True))
    assert (cells["best val bits/spike"], cells["state"], cells["job"]) == ("-", "Failed", "broken")
    assert any(line.startswith("failed: broken: ") and line.endswith("(exit code 3)")
               for line in legend)  # fmt: skip
    assert backend.cancel("broken") and not (tmp_path / "_results").exists()  # no result to keep


def test_a_damaged_ledger_file_is_skipped_not_fatal(tmp_path: Path, results):
    store = LocalBackend(tmp_path).store
    store.write_result_record("kept", {"job": {"metadata": {"name": "kept", "labels": {
        "app.kubernetes.io/name": "corejob", "corejob.dev/model": "m",
        "corejob.dev/dataset": "d"}}}, "result": {"best_val_bps_overall": 0.5}})  # fmt: skip
    (tmp_path / "_results" / "torn.json").write_text('{"job": ')
    assert [r["job"]["metadata"]["name"] for r in store.result_records()] == ["kept"]
    code, out, _ = results("-o", "json")
    assert code == 0 and [(r["job"], r["source"]) for r in json.loads(out)] == [("kept", "ledger")]


LIMITS = {"time_budget_minutes": 5.0, "time_budget_clock": "wall", "max_epochs": 100,
          "steps_per_epoch": None, "accelerator": "cpu", "cores": 2}  # fmt: skip


def test_runs_under_other_training_limits_are_flagged_not_comparable(tmp_path: Path, results):
    backend = LocalBackend(tmp_path)
    same = dict(TRAINED, training_limits=LIMITS)
    finished_job(backend, "run-a", same)
    finished_job(backend, "run-b", dict(same, dataset="synthetic_mixed"))
    cpu_clock = dict(LIMITS, time_budget_clock="cpu", cores=1)
    finished_job(backend, "run-c", dict(same, dataset="synthetic_gaborium",
                                        training_limits=cpu_clock))  # fmt: skip

    code, out, err = results("--plot", "cells.png")

    assert code == 0, err
    table, _, legend = out.partition("\n\n")
    flagged = {line.split()[-1]: line.split()[-2] for line in table.splitlines()[1:]}
    assert flagged == {"run-a": "-", "run-b": "-", "run-c": "not-comparable"}
    assert ("flags: not-comparable = trained under other limits than most runs of this table "
            "(time budget (min) 5.0, budget clock wall, max epochs 100, accelerator cpu, "
            "cores 2): not comparable with them") in legend  # fmt: skip
    assert "  run-c: budget clock cpu, cores 1 (most runs: wall, 2)" in legend
    assert "(2 of 3 cells)" in legend  # left out of the model's mean
    code, out, _ = results("-o", "json")
    rows = {row["job"]: row for row in json.loads(out)}
    assert rows["run-c"]["flag_reasons"] == {
        "not-comparable": "budget clock cpu, cores 1 (most runs: wall, 2)"
    }
    assert rows["run-a"]["flags"] == [] and rows["run-a"]["flag_reasons"] == {}
