"""The local backend with the real trainer: 1 Master + 1 Worker on ``synthetic_tiny``.

These are the issue's acceptance tests: DDP over gloo between two local processes
with the operator's env, status/logs/results from a second CLI invocation, a SIGKILLed
worker restarted under ``restartPolicy: ExitCode`` with training resumed from
``last.ckpt``, a config error failing after one attempt, cancel and the deadline leaving
no process behind.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from corejob.backends.local.backend import LocalBackend
from corejob.job.state import JobState, summarize
from corejob.job.values import LOCAL_DATA_CLAIM
from tests.support.local_jobs import chart_job
from tests.support.wait import wait_until

pytestmark = pytest.mark.slow

TINY = {"maxEpochs": 2, "stepsPerEpoch": 8, "numWorkers": 0}


def corejob(*args: str, runs_dir: Path) -> subprocess.CompletedProcess[str]:
    """One CLI invocation in its own process, as a user in another shell would run it."""
    command = [sys.executable, "-m", "corejob", *args, "--backend", "local"]
    command += ["--runs-dir", str(runs_dir)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def wait_until_finished(backend: LocalBackend, name: str, timeout: float = 150.0):
    def finished():
        summary = summarize(backend.get(name))
        return summary if summary.state.finished else None

    return wait_until(finished, timeout, f"job {name} to finish", interval=0.5)


def wait_for_line(path: Path, text: str, timeout: float = 90.0) -> None:
    wait_until(
        lambda: path.exists() and text in path.read_text(errors="replace"),
        timeout,
        f"{text!r} in {path.name}",
        interval=0.2,
    )


def group_members(pgids: list[int]) -> list[int]:
    """Every live process in the given process groups (a replica and all it spawned)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) in pgids:
            members.append(int(entry.name))
    return members


def replica_pids(backend: LocalBackend, name: str) -> dict[str, int]:
    record = backend.store.read_supervisor(name) or {}
    return {rid: r["pid"] for rid, r in (record.get("replicas") or {}).items() if r.get("pid")}


def test_two_ranks_train_and_a_second_cli_reports(tmp_path: Path):
    sets = [f"--set=trainer.{key}={value}" for key, value in TINY.items()]
    submitted = corejob("submit", "--model", "res_small", "--dataset", "synthetic_tiny",
                        "--workers", "1", *sets, runs_dir=tmp_path)  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    name = submitted.stdout.split("created job ")[1].split()[0]
    summary = wait_until_finished(LocalBackend(tmp_path), name)
    assert summary.state is JobState.SUCCEEDED, summary.message
    # /data is the machine's shared data claim: the next local job reuses these sessions
    shared = LocalBackend(tmp_path).store.claims_dir / LOCAL_DATA_CLAIM / "synthetic_raw"
    (back,) = [p for p in shared.iterdir() if p.name.startswith("tiny_back-")]
    derived = [p for p in (back / "derived").iterdir() if not p.name.startswith(".")]
    assert len(derived) == 1 and (derived[0] / "meta.json").is_file()  # and its arrays
    assert not (tmp_path / name / "volumes" / "data").exists()

    status = corejob("status", name, runs_dir=tmp_path)
    assert status.returncode == 0 and "Succeeded" in status.stdout, status.stdout + status.stderr
    logs = corejob("logs", name, "--all", runs_dir=tmp_path)
    assert re.search(  # a timestamped line (trainer/quiet_logs.py)
        r"^\[master-0\] \S+ INFO Initializing distributed: GLOBAL_RANK: 0, MEMBER: 1/2$",
        logs.stdout,
        re.MULTILINE,
    )
    assert re.search(  # a timestamped line (trainer/quiet_logs.py)
        r"^\[worker-0\] \S+ INFO Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2$",
        logs.stdout,
        re.MULTILINE,
    )
    assert "[worker-0] COREJOB_EPOCH rank=1 epoch=2/2" in logs.stdout  # the worker trained
    result = LocalBackend(tmp_path).result(name)
    results = corejob("results", runs_dir=tmp_path)
    assert results.returncode == 0, results.stderr
    assert f"{result['best_val_bps_overall']:.4f}" in results.stdout  # the model x dataset table
    assert result["world_size"] == 2 and result["global_step"] == 2 * TINY["stepsPerEpoch"]
    metrics = json.loads((tmp_path / name / "volumes" / "runs" / name / "metrics.json").read_text())
    assert metrics["world_size"] == 2


def test_torchrun_pods_multiply_the_world_size(tmp_path: Path):
    """nprocPerNode=2: the chart runs torchrun, which reads the operator's PET_* variables."""
    backend = LocalBackend(tmp_path)
    backend.submit(chart_job("torchrun", nprocPerNode=2, trainer={**TINY, "maxEpochs": 1}))
    summary = wait_until_finished(backend, "torchrun")
    assert summary.state is JobState.SUCCEEDED, summary.message
    assert backend.result("torchrun")["world_size"] == 4
    worker_log = "\n".join(backend.logs("torchrun", replica="worker-0"))
    assert "GLOBAL_RANK: 3, MEMBER: 4/4" in worker_log


def test_sigkilled_worker_is_restarted_and_training_resumes(tmp_path: Path):
    backend = LocalBackend(tmp_path)
    job = chart_job("resume", trainer={"maxEpochs": 5, "stepsPerEpoch": 8, "numWorkers": 0})
    backend.submit(job)
    checkpoint = tmp_path / "resume" / "volumes" / "runs" / "resume" / "checkpoints" / "last.ckpt"
    wait_for_line(backend.store.log_path("resume", "master-0"), "epoch=2/5")
    assert checkpoint.exists()
    os.kill(replica_pids(backend, "resume")["worker-0"], signal.SIGKILL)

    summary = wait_until_finished(backend, "resume")
    assert summary.state is JobState.SUCCEEDED, summary.message
    restarts = {
        rid: r["restarts"] for rid, r in backend.store.read_supervisor("resume")["replicas"].items()
    }
    assert restarts["worker-0"] >= 1
    worker_log = "\n".join(backend.logs("resume", replica="worker-0"))
    assert "corejob: restart 1 of worker-0 (previous exit code 137)" in worker_log
    result = backend.result("resume")
    assert result["resumed_from"].endswith("last.ckpt")
    assert result["global_step"] == 5 * 8  # the step count continued, not restarted
    assert result["attempts"] == 2
    assert not list(checkpoint.parent.glob(".*.partial"))  # no half-written checkpoint left
    pgids = list(replica_pids(backend, "resume").values())
    wait_until(lambda: not group_members(pgids), 30, "the replicas' processes to be gone")


def test_unknown_model_field_fails_after_one_attempt(tmp_path: Path):
    # The config sits on the job's data volume, where the pod sees it as /data/...
    bad = tmp_path / "badcfg" / "volumes" / "data" / "bad_model.yaml"
    bad.parent.mkdir(parents=True)
    original = Path("trainer/configs/models/res_small.yaml").read_text()
    bad.write_text(original + "\nbogus_field: 1\n")
    job = chart_job("badcfg", trainer=TINY)
    for spec in job["spec"]["pytorchReplicaSpecs"].values():
        args = spec["template"]["spec"]["containers"][0]["args"]
        args[args.index("--model_config") + 1] = "/data/bad_model.yaml"
    backend = LocalBackend(tmp_path)
    backend.submit(job)
    summary = wait_until_finished(backend, "badcfg")
    assert (summary.state, summary.reason) == (JobState.FAILED, "PyTorchJobFailed")
    replicas = backend.store.read_supervisor("badcfg")["replicas"]
    assert all(r["restarts"] == 0 for r in replicas.values())
    # whichever rank read the config first failed the job; its error is in its log
    lines = list(backend.logs("badcfg", all_replicas=True))
    assert any("bogus_field: unknown field" in line for line in lines)


def test_cancel_and_deadline_leave_no_process(tmp_path: Path):
    backend = LocalBackend(tmp_path)
    long_run = {"maxEpochs": 200, "stepsPerEpoch": 8, "numWorkers": 1}
    backend.submit(chart_job("cancelme", trainer=long_run))
    backend.submit(chart_job("deadline", trainer=long_run, runPolicy={"activeDeadlineSeconds": 25}))
    wait_for_line(backend.store.log_path("cancelme", "master-0"), "epoch=1/200")
    pgids = list(replica_pids(backend, "cancelme").values())
    assert len(group_members(pgids)) > 2  # replicas plus their data-loader workers
    cancelled = corejob("cancel", "cancelme", runs_dir=tmp_path)
    assert cancelled.returncode == 0, cancelled.stderr
    assert group_members(pgids) == []
    assert backend.get("cancelme") is None

    pgids = list(replica_pids(backend, "deadline").values())
    summary = wait_until_finished(backend, "deadline", timeout=120)
    assert summary.state is JobState.FAILED and "deadline" in summary.message
    # The replicas and their data-loader workers are stopped as the job fails, or soon after.
    wait_until(
        lambda: group_members(pgids) == [],
        30,
        "the deadline job's replicas and their workers to be gone",
        interval=0.2,
    )
