"""The supervisor's lifecycle with small Python programs standing in for the trainer.

Each program gets the very env and mapped volumes the trainer would, so these tests
check process handling (restarts, deadline, cancel, orphans) in seconds; the real
trainer runs in test_local_training.py.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from corejob.backends.local.backend import LocalBackend
from corejob.backends.local.log_index import read_index
from corejob.backends.local.store import process_alive
from corejob.job.state import JobState, summarize
from tests.support.local_jobs import (
    no_leftover_jobs,  # noqa: F401  (autouse)
    script_job,
)
from tests.support.wait import wait_until

# Stand-in trainer: records its env, then does what its attempt number says.
PROGRAM = r"""
import json, os, signal, subprocess, sys, time
run_dir = sys.argv[1]
os.makedirs(run_dir, exist_ok=True)
rank = os.environ["RANK"]
counter = os.path.join(run_dir, f"attempts-{rank}")
attempt = len(open(counter).read()) + 1 if os.path.exists(counter) else 1
open(counter, "a").write("x")
print("rank", rank, "world", os.environ["WORLD_SIZE"], "attempt", attempt, flush=True)
BEHAVIOUR
"""

SUCCEED = """
if rank == "0":
    print("COREJOB_RESULT " + json.dumps({"world_size": int(os.environ["WORLD_SIZE"])}))
"""
# Attempt 1: the worker dies by SIGKILL, the master notices and exits 129 (peer died).
RESTART = (
    """
dead = os.path.join(run_dir, "worker-dead")
if attempt == 1 and rank == "1":
    open(dead, "w").close()
    os.kill(os.getpid(), signal.SIGKILL)
if attempt == 1 and rank == "0":
    while not os.path.exists(dead):
        time.sleep(0.05)
    sys.exit(129)
"""
    + SUCCEED
)
CONFIG_ERROR = """
if rank == "0":
    print("error: model config res_small: unknown field 'bogus'", file=sys.stderr)
    sys.exit(2)
time.sleep(60)
"""
# Spawns a grandchild, records both pids, then runs until stopped.
HANG = """
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
open(os.path.join(run_dir, f"pids-{rank}"), "w").write(f"{os.getpid()} {child.pid}")
time.sleep(300)
"""


def job_with(name: str, behaviour: str, **run_policy):
    return script_job(name, PROGRAM.replace("BEHAVIOUR", behaviour), **run_policy)


def wait_until_finished(backend: LocalBackend, name: str, timeout: float = 30.0):
    def finished():
        summary = summarize(backend.get(name))
        return summary if summary.state.finished else None

    return wait_until(finished, timeout, f"job {name} to finish", interval=0.1)


def run_dir(tmp_path: Path, name: str) -> Path:
    return tmp_path / name / "volumes" / "runs" / name


def recorded_pids(tmp_path: Path, name: str, timeout: float = 15.0) -> list[int]:
    files = [run_dir(tmp_path, name) / f"pids-{rank}" for rank in (0, 1)]
    wait_until(
        lambda: all(f.exists() and f.read_text() for f in files),
        timeout,
        f"both stand-in replicas of {name} to record their pids",
    )
    return [int(pid) for f in files for pid in f.read_text().split()]


def test_success_state_logs_and_result_from_a_fresh_backend(tmp_path: Path):
    outcome = LocalBackend(tmp_path).submit(job_with("ok", SUCCEED))
    assert outcome.created and outcome.summary.state is JobState.CREATED
    assert not LocalBackend(tmp_path).submit(job_with("ok", SUCCEED)).created
    summary = wait_until_finished(LocalBackend(tmp_path), "ok")
    assert (summary.state, summary.reason) == (JobState.SUCCEEDED, "PyTorchJobSucceeded")
    other_shell = LocalBackend(tmp_path)
    assert other_shell.result("ok") == {"world_size": 2}
    assert any("rank 1 world 2" in line for line in other_shell.logs("ok", replica="worker-0"))
    lines = list(other_shell.logs("ok", all_replicas=True))
    assert any(line.startswith("[master-0] rank 0 world 2") for line in lines)
    assert [
        job["metadata"]["name"] for job in other_shell.list({"corejob.dev/model": "res_small"})
    ] == ["ok"]


def test_concurrent_submits_start_one_job(tmp_path: Path):
    job = job_with("twice", SUCCEED)
    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(lambda _: LocalBackend(tmp_path).submit(job), range(4)))
    assert sorted(o.created for o in outcomes) == [False, False, False, True]
    assert wait_until_finished(LocalBackend(tmp_path), "twice").state is JobState.SUCCEEDED
    assert (run_dir(tmp_path, "twice") / "attempts-0").read_text() == "x"


def test_follow_streams_until_the_job_ends(tmp_path: Path):
    backend = LocalBackend(tmp_path)
    ticks = "for i in range(5):\n    print('tick', i, flush=True)\n    time.sleep(0.2)\n"
    backend.submit(job_with("ticker", ticks))
    lines = [line for line in backend.logs("ticker", follow=True) if line.startswith("tick")]
    assert lines == [f"tick {i}" for i in range(5)]
    assert summarize(backend.get("ticker")).state is JobState.SUCCEEDED


# Prints 'early', then 'late' only once the test creates the file ``go``.
EARLY_THEN_LATE = """
print('early', flush=True)
while not os.path.exists(os.path.join(run_dir, "go")):
    time.sleep(0.05)
print('late', flush=True)
"""


def test_since_cuts_the_log_by_write_time(tmp_path: Path):
    """``since_seconds=2`` keeps the line written after the cutoff and drops the one before.

    The supervisor records when each part of a log was written (its ``.index``). The test
    reads when 'early' was recorded and lets the job print 'late' only once that is more
    than 2 s (plus a margin) in the past, so no sleep has to be long enough.
    """
    backend = LocalBackend(tmp_path)
    backend.submit(job_with("since", EARLY_THEN_LATE))
    log = backend.store.log_path("since", "master-0")

    def indexed(line: bytes) -> float | None:
        """When the supervisor recorded ``line`` as written, if it has."""
        text = log.read_bytes() if log.exists() else b""
        if line + b"\n" not in text:
            return None
        end = text.index(line + b"\n") + len(line) + 1
        return next((when for size, when in read_index(log) if size >= end), None)

    since_s = 2
    early_at = wait_until(lambda: indexed(b"early"), 15, "'early' in the log index")
    wait_until(
        lambda: time.time() > early_at + since_s + 0.5,
        since_s + 5,
        f"'early' to be over {since_s} s old",
    )
    (run_dir(tmp_path, "since") / "go").touch()
    wait_until(lambda: indexed(b"late"), 15, "'late' in the log index")
    # Asked at once, 'late' is well inside the window: it was indexed a poll interval ago.
    recent = list(backend.logs("since", since_seconds=since_s))
    assert "late" in recent and "early" not in recent
    assert wait_until_finished(backend, "since").state is JobState.SUCCEEDED
    assert "early" in list(backend.logs("since"))


def test_killed_worker_restarts_the_gang_and_the_job_succeeds(tmp_path: Path):
    backend = LocalBackend(tmp_path)
    backend.submit(job_with("restart", RESTART))
    summary = wait_until_finished(backend, "restart")
    assert summary.state is JobState.SUCCEEDED
    replicas = backend.store.read_supervisor("restart")["replicas"]
    assert {rid: r["restarts"] for rid, r in replicas.items()} == {"master-0": 1, "worker-0": 1}
    worker_log = list(backend.logs("restart", replica="worker-0"))
    assert "corejob: restart 1 of worker-0 (previous exit code 137)" in worker_log
    assert any("attempt 2" in line for line in worker_log)
    assert (run_dir(tmp_path, "restart") / "attempts-0").read_text() == "xx"


def test_config_error_fails_after_one_attempt(tmp_path: Path):
    backend = LocalBackend(tmp_path)
    backend.submit(job_with("bad", CONFIG_ERROR))
    summary = wait_until_finished(backend, "bad")
    assert (summary.state, summary.reason) == (JobState.FAILED, "PyTorchJobFailed")
    assert "Master replica(s) failed" in summary.message
    assert any("unknown field 'bogus'" in line for line in backend.logs("bad"))
    assert (run_dir(tmp_path, "bad") / "attempts-0").read_text() == "x"
    assert any(
        reason.startswith("master-0 exited with code 2") for reason in backend.explain("bad")
    )


def test_cancel_leaves_no_process_behind(tmp_path: Path):
    backend = LocalBackend(tmp_path)
    backend.submit(job_with("hang", HANG))
    pids = recorded_pids(tmp_path, "hang")
    supervisor = backend.store.read_supervisor("hang")["pid"]
    assert backend.cancel("hang")
    assert backend.get("hang") is None and not backend.cancel("hang")
    for pid in [*pids, supervisor]:
        assert not process_alive(pid, None), f"pid {pid} survived cancel"


def test_active_deadline_stops_an_overlong_job(tmp_path: Path):
    backend = LocalBackend(tmp_path)
    backend.submit(job_with("slow", HANG, activeDeadlineSeconds=2))
    pids = recorded_pids(tmp_path, "slow")
    summary = wait_until_finished(backend, "slow")
    assert summary.state is JobState.FAILED and "deadline" in summary.message
    wait_until(
        lambda: not any(process_alive(pid, None) for pid in pids),
        10,
        "the replicas and their children to be gone after the deadline",
        interval=0.1,
    )


def test_a_dead_supervisor_is_reported_as_failed(tmp_path: Path):
    backend = LocalBackend(tmp_path)
    backend.submit(job_with("orphan", HANG))
    pids = recorded_pids(tmp_path, "orphan")
    os.kill(backend.store.read_supervisor("orphan")["pid"], 9)
    # The replicas run on (HANG sleeps 300 s): only the dead supervisor can end the job.
    summary = wait_until_finished(backend, "orphan", timeout=15)
    assert summary.state is JobState.FAILED and "supervisor" in summary.message
    assert backend.cancel("orphan")
    for pid in pids:
        assert not process_alive(pid, None)
