"""The local supervisor's faults: killed, out of disk, unable to start; failed jobs resubmitted.

Issue 15 ("never lose a run"): a killed supervisor left its replicas training as orphans
while ``status`` said Failed; a full disk made it crash with ``status`` saying only
"supervisor is gone". Here every fault is made for real: SIGKILL, a genuinely full tmpfs
as the runs directory (needs ``mount``: root here, skipped elsewhere with the reason), a
supervisor that cannot start. The replicas are small Python stand-ins for the trainer
(tests/corejob/backends/local/test_supervisor.py explains them); resubmitting a Failed job
runs through the real CLI, on the local backend and on the emulated Kubernetes API.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from corejob.backends.local.backend import LocalBackend
from corejob.backends.local.store import process_alive
from corejob.errors import CorejobError, UnavailableError
from corejob.job.state import JobState, summarize
from tests.corejob.conftest import cluster, corejob  # noqa: F401  (emulated API + CLI)
from tests.support.local_jobs import (
    no_leftover_jobs,  # noqa: F401  (autouse)
    script_job,
)
from tests.support.wait import wait_until

# Stand-in replica: on SIGTERM it notes the signal (where the trainer saves last.ckpt) and
# exits 143; it spawns a child that does not handle SIGTERM (a data-loader worker), records
# both pids, then waits: for ``go`` (then exits 1) or for 300 s.
STAND_IN = r"""
import os, signal, subprocess, sys, time
run_dir = sys.argv[1]
os.makedirs(run_dir, exist_ok=True)
rank = os.environ["RANK"]
def on_term(signum, frame):
    open(os.path.join(run_dir, f"sigterm-{rank}"), "w").close()
    sys.exit(143)
signal.signal(signal.SIGTERM, on_term)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
open(os.path.join(run_dir, f"pids-{rank}"), "w").write(f"{os.getpid()} {child.pid}")
for _ in range(3000):
    if os.path.exists(os.path.join(run_dir, "go")):
        sys.exit(1)
    time.sleep(0.1)
"""


def run_dir(runs: Path, name: str) -> Path:
    return runs / name / "volumes" / "runs" / name


def recorded_pids(runs: Path, name: str) -> list[int]:
    files = [run_dir(runs, name) / f"pids-{rank}" for rank in (0, 1)]
    wait_until(
        lambda: all(f.exists() and f.read_text() for f in files),
        20,
        f"both stand-in replicas of {name} to record their pids",
    )
    return [int(pid) for f in files for pid in f.read_text().split()]


def running(pids: list[int]) -> list[int]:
    return [pid for pid in pids if process_alive(pid, None)]


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            text = stat.read_text()
            if int(text[text.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def test_a_killed_supervisor_takes_its_replicas_with_it(tmp_path: Path):
    """Nobody asks for the status: the kernel (parent-death signal) and the watchdog end
    every replica process, and the job is recorded Failed only once none is left."""
    backend = LocalBackend(tmp_path)
    backend.submit(script_job("orphan", STAND_IN))
    pids = recorded_pids(tmp_path, "orphan")
    supervisor = backend.store.read_supervisor("orphan")["pid"]
    os.kill(supervisor, signal.SIGKILL)

    stored = wait_until(
        lambda: (job := backend.store.read_job("orphan")) and summarize(job).state.finished and job,
        30,
        "the watchdog to record the job as finished",
        interval=0.1,
    )
    assert running(pids) == [], "a replica process outlived the Failed record"
    summary = summarize(stored)
    assert summary.state is JobState.FAILED
    assert f"the local supervisor (pid {supervisor}) is gone" in summary.message
    counts = stored["status"]["replicaStatuses"].values()
    assert [c["active"] for c in counts] == [0, 0], "Failed, yet replicas counted as active"
    for rank in (0, 1):  # asked to stop first: the trainer would have saved last.ckpt
        assert (run_dir(tmp_path, "orphan") / f"sigterm-{rank}").exists()


def test_status_stops_what_a_dead_supervisor_left_before_saying_failed(tmp_path: Path):
    """Without a watchdog (killed too), ``get`` finds the dead supervisor, the replicas'
    children still running, and ends them before it answers Failed."""
    backend = LocalBackend(tmp_path)
    backend.submit(script_job("lonely", STAND_IN))
    pids = recorded_pids(tmp_path, "lonely")
    record = backend.store.read_supervisor("lonely")
    leaders = {entry["pid"] for entry in record["replicas"].values()}
    (watchdog,) = [pid for pid in children_of(record["pid"]) if pid not in leaders]
    os.kill(watchdog, signal.SIGKILL)
    os.kill(record["pid"], signal.SIGKILL)
    wait_until(lambda: not running(sorted(leaders)), 15, "the replicas' parent-death SIGTERM")
    orphans = running(pids)
    assert orphans, "the stand-ins' children should still run: nothing has reconciled yet"
    assert not summarize(backend.store.read_job("lonely")).state.finished

    with backend.store.submit_lock("lonely"):  # someone else is reconciling right now
        assert summarize(backend.get("lonely")).state is not JobState.FAILED
    summary = summarize(backend.get("lonely"))
    assert running(orphans) == [], "status said Failed while a replica's child still ran"
    assert summary.state is JobState.FAILED and "supervisor" in summary.message
    assert summarize(backend.store.read_job("lonely")).state is JobState.FAILED  # recorded


@contextlib.contextmanager
def mounted_tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("a full file system is made with `mount -t tmpfs`, which needs root")
    mount = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)]
    subprocess.run(mount, check=True, capture_output=True)
    try:
        yield path
    finally:
        for name in LocalBackend(path).store.names():
            LocalBackend(path).cancel(name)
        if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], check=True)


def fill(directory: Path) -> Path:
    """Write a file until the file system has no block left; returns it."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as handle:
        for chunk in (1 << 20, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    handle.write(b"\0" * chunk)
    probe = directory / "probe"
    with pytest.raises(OSError) as full, open(probe, "wb") as handle:
        handle.write(b"x" * 8192)
    assert full.value.errno == errno.ENOSPC
    probe.unlink()
    return filler


def test_a_full_disk_is_the_reason_status_gives(tmp_path: Path):
    with mounted_tmpfs(tmp_path / "runs", "8m") as runs:
        backend = LocalBackend(runs)
        backend.submit(script_job("full", STAND_IN))
        pids = recorded_pids(runs, "full")
        supervisor = backend.store.read_supervisor("full")["pid"]
        fill(runs)
        (run_dir(runs, "full") / "go").touch()  # the master exits: the supervisor must write

        summary = wait_until(
            lambda: (found := summarize(backend.get("full"))).state.finished and found,
            30,
            "job full to fail",
            interval=0.1,
        )
        assert summary.state is JobState.FAILED
        expected = (
            rf"the local supervisor \(pid {supervisor}\) failed: No space left on device "
            rf"writing {re.escape(str(runs / 'full'))}/(supervisor|job)\.json"
        )
        assert re.fullmatch(expected, summary.message), summary.message
        assert running(pids) == []
        status = subprocess.run(
            [sys.executable, "-m", "corejob", "status", "full", "--backend", "local",
             "--runs-dir", str(runs)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert status.returncode == 0, status.stderr
        assert re.search(f"full: failed: PyTorchJobFailed: {expected}", status.stdout)

        with pytest.raises(UnavailableError) as refused:
            backend.submit(script_job("another", STAND_IN))
        message = str(refused.value)
        assert "\n" not in message and message.startswith(
            f"cannot write job another's files (No space left on device: {runs}/another/"
        )
        assert message.endswith("free space or fix the runs directory, then submit again")


class NoSuchJobSupervisor(LocalBackend):
    """Starts the supervisor for a job that does not exist: it fails before it is ready."""

    def _supervisor_command(self, name: str) -> list[str]:
        command = super()._supervisor_command(name)
        command[command.index("--name") + 1] = "nosuchjob"
        (self.store.job_dir("nosuchjob")).mkdir(parents=True, exist_ok=True)
        return command


def test_a_supervisor_that_cannot_start_fails_the_submit(tmp_path: Path):
    backend = NoSuchJobSupervisor(tmp_path)
    with pytest.raises(CorejobError) as failed:
        backend.submit(script_job("unstarted", STAND_IN))
    message = str(failed.value)
    assert message.startswith(
        "could not start the local supervisor of job unstarted: LookupError: "
        f"no job 'nosuchjob' in {tmp_path}; traceback in "
    )
    assert "\n" not in message
    assert backend.get("unstarted") is None  # nothing half-created: the name is free
    assert not (tmp_path / "unstarted" / "supervisor.json").exists()


# -- resubmitting a Failed job on Kubernetes (the emulated API server) ---------------------
def test_resubmitting_a_failed_kubernetes_job_recreates_it(cluster, corejob):  # noqa: F811
    submit = ("submit", "-m", "res_small", "-d", "synthetic_tiny")
    first = corejob(*submit)
    name = first.out.split()[2]
    old_uid = cluster.job(name)["metadata"]["uid"]
    cluster.operator.set_condition(name, "Failed", "PyTorchJobFailed", "OOMKilled")

    kept = corejob(*submit, "--no-rerun")
    assert kept.code == 0
    assert f"job {name} already exists in namespace team-a (state Failed)" in kept.out
    assert cluster.job(name)["metadata"]["uid"] == old_uid

    again = corejob(*submit)
    assert again.code == 0, again.err
    assert again.out.splitlines() == [
        f"job {name} had failed (OOMKilled); running it again (starts over: /runs was an emptyDir)",
        f"created job {name} in namespace team-a (kubernetes)",
    ]
    recreated = cluster.job(name)
    assert recreated["metadata"]["uid"] != old_uid
    assert summarize(recreated).state is not JobState.FAILED

    claim = (*submit, "--set", "checkpoints.existingClaim=ckpts")
    claimed = corejob(*claim).out.split()[2]
    cluster.operator.set_condition(claimed, "Failed", "PyTorchJobFailed", "evicted")
    assert "running it again (resumes from its checkpoints)" in corejob(*claim).out
