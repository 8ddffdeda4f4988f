"""Local jobs share the machine's cores instead of oversubscribing them (issue 16, item 5).

Stand-in trainers (small Python programs with the trainer's env) make the order of events
explicit: the first job holds the cores until the test lets it finish; the second must
wait, visibly, and start only then.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from corejob.backends.local.backend import LocalBackend
from corejob.job.state import JobState, summarize
from corejob.results.collect import row_from_job
from corejob.results.table import OVERSUBSCRIBED, build_table
from tests.support.local_jobs import (
    no_leftover_jobs,  # noqa: F401  (autouse)
    script_job,
)
from tests.support.wait import wait_until

# Records that it started (and its thread count), then runs until the file ``go`` exists.
HOLD = r"""
import json, os, sys, time
run_dir = sys.argv[1]
os.makedirs(run_dir, exist_ok=True)
rank = os.environ["RANK"]
open(os.path.join(run_dir, f"started-{rank}"), "w").write(os.environ["OMP_NUM_THREADS"])
while not os.path.exists(os.path.join(os.path.dirname(run_dir), "go")):
    time.sleep(0.05)
if rank == "0":
    print("COREJOB_RESULT " + json.dumps({"best_val_bps_overall": 0.5, "global_step": 500}))
"""


def run_dir(tmp_path: Path, name: str) -> Path:
    return tmp_path / name / "volumes" / "runs" / name


def release(tmp_path: Path, name: str) -> None:
    (run_dir(tmp_path, name).parent / "go").touch()


def finished(backend: LocalBackend, name: str):
    def check():
        summary = summarize(backend.get(name))
        return summary if summary.state.finished else None

    return wait_until(check, 60, f"job {name} to finish", interval=0.1)


@pytest.fixture
def two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COREJOB_LOCAL_CORES", "2")


def test_a_second_job_queues_until_the_first_frees_the_cores(tmp_path: Path, two_cores, corejob):
    backend = LocalBackend(tmp_path)
    backend.submit(script_job("first", HOLD, workers=1))
    wait_until(lambda: (run_dir(tmp_path, "first") / "started-1").exists(), 30, "first to run")
    # 2 processes on 2 cores: one thread each, the whole machine
    assert (run_dir(tmp_path, "first") / "started-0").read_text() == "1"

    backend.submit(script_job("second", HOLD, workers=1))
    queued = wait_until(
        lambda: (s := summarize(backend.get("second"))).message.startswith("queued") and s,
        30,
        "the second job to say it is queued",
    )
    assert queued.state is JobState.CREATED and queued.reason == "QueuedForCPU"
    assert queued.message == "queued for CPU: needs 2 of 2 cores, 2 in use by first (2)"
    assert backend.explain("second")[0] == queued.message
    assert not run_dir(tmp_path, "second").exists()  # nothing of it started
    shown = corejob("status", "second", "--backend", "local", "--runs-dir", str(tmp_path))
    assert shown.code == 0 and queued.message in shown.out, shown.out

    release(tmp_path, "first")
    assert finished(backend, "first").state is JobState.SUCCEEDED
    wait_until(lambda: (run_dir(tmp_path, "second") / "started-1").exists(), 30, "second to run")
    release(tmp_path, "second")
    assert finished(backend, "second").state is JobState.SUCCEEDED
    record = backend.store.read_supervisor("second")
    assert record["cpu"]["cores"] == 2 and record["cpu"]["queued_s"] > 0
    assert "queued" not in record["cpu"]


def test_cancelling_a_queued_job_frees_its_place(tmp_path: Path, two_cores):
    backend = LocalBackend(tmp_path)
    backend.submit(script_job("holder", HOLD, workers=1))
    wait_until(lambda: (run_dir(tmp_path, "holder") / "started-0").exists(), 30, "holder to run")
    backend.submit(script_job("waiter", HOLD, workers=1))
    wait_until(lambda: backend.explain("waiter")[0].startswith("queued"), 30, "waiter queued")
    assert backend.cancel("waiter")
    backend.submit(script_job("next", HOLD, workers=1))
    wait_until(
        lambda: backend.explain("next")[0].endswith("2 in use by holder (2)"),
        30,
        "next to queue behind the holder only (not behind the cancelled waiter)",
    )
    release(tmp_path, "holder")
    wait_until(lambda: (run_dir(tmp_path, "next") / "started-1").exists(), 30, "next to run")
    release(tmp_path, "next")
    assert finished(backend, "next").state is JobState.SUCCEEDED


def test_more_processes_than_cores_runs_alone_and_its_result_is_flagged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("COREJOB_LOCAL_CORES", "1")
    backend = LocalBackend(tmp_path)
    backend.submit(script_job("crowded", HOLD, workers=2))
    wait_until(lambda: (run_dir(tmp_path, "crowded") / "started-2").exists(), 30, "all 3 run")
    release(tmp_path, "crowded")
    assert finished(backend, "crowded").state is JobState.SUCCEEDED
    result = backend.result("crowded")
    assert result["cpu_oversubscribed"] is True
    [entry] = build_table([row_from_job(backend.get("crowded"), result)])
    assert entry.flags == (OVERSUBSCRIBED,) and not entry.counted
