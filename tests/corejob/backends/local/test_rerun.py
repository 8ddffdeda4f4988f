"""``corejob submit`` of a job whose local record is Failed runs it again (issue 15).

The failed run is a stand-in replica with the very name the CLI renders; it leaves a
checkpoint in its volume and a line in its log. Resubmitting through the real CLI must
replace the record (a new uid), keep the volume (the trainer resumes from it) and keep
the failed run's log next to the new one; ``--no-rerun`` must leave everything alone.
The rerun itself is the real trainer: the test cancels it once the CLI has returned.
"""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from corejob.backends.local.backend import LocalBackend
from corejob.job.spec import JobRequest, build_job
from corejob.job.state import JobState, summarize
from corejob.job.values import (
    ValueSources,
    backend_defaults,
    default_value_files,
    merge_values,
    values_from_sources,
)
from tests.support.local_jobs import no_leftover_jobs  # noqa: F401  (autouse)
from tests.support.wait import wait_until

# Leaves a checkpoint where the trainer keeps its own, says so, and fails permanently.
FAILING = r"""
import os, sys
checkpoints = os.path.join(sys.argv[1], "checkpoints")
os.makedirs(checkpoints, exist_ok=True)
open(os.path.join(checkpoints, "last.ckpt"), "w").write("epoch 3")
print("stand-in: saved epoch 3, then failed", flush=True)
sys.exit(2)
"""
SUBMIT = ("submit", "-m", "res_small", "-d", "synthetic_tiny", "--workers", "0")


def stand_in(job: dict[str, Any], script: str) -> dict[str, Any]:
    """``job`` with its trainer replaced by ``script`` (argument: the run directory)."""
    job = copy.deepcopy(job)
    name = job["metadata"]["name"]
    for spec in job["spec"]["pytorchReplicaSpecs"].values():
        container = spec["template"]["spec"]["containers"][0]
        container["command"] = [sys.executable, "-c", script]
        container["args"] = [f"/runs/{name}"]
    return job


@pytest.fixture
def failed_job(tmp_path: Path) -> str:
    """The CLI's job for SUBMIT, failed by a stand-in; its name."""
    # What the CLI adds: the local backend's values, then the site defaults (the suite's).
    site = values_from_sources(ValueSources(files=default_value_files(os.environ, Path.cwd())))
    local = merge_values(backend_defaults("local"), site)
    job = build_job(JobRequest("res_small", "synthetic_tiny", workers=0, values=local), None)
    backend = LocalBackend(tmp_path)
    backend.submit(stand_in(job, FAILING))
    name = job["metadata"]["name"]
    wait_until(
        lambda: summarize(backend.get(name)).state is JobState.FAILED,
        30,
        f"the stand-in job {name} to fail",
        interval=0.1,
    )
    return name


def test_a_failed_job_is_run_again_from_its_checkpoints(tmp_path: Path, failed_job, corejob):
    backend = LocalBackend(tmp_path)
    name = failed_job
    old = backend.get(name)
    where = ("--backend", "local", "--runs-dir", str(tmp_path))

    again = corejob(*SUBMIT, *where)

    assert again.code == 0, again.err
    assert again.out.splitlines() == [
        f"job {name} had failed (PyTorchJob {name} is failed because 1 Master replica(s) "
        "failed.); running it again (resumes from its checkpoints)",
        f"created job {name} (local)",
    ]
    new = backend.get(name)
    assert new["metadata"]["uid"] != old["metadata"]["uid"]
    assert summarize(new).state is not JobState.FAILED
    run_dir = tmp_path / name / "volumes" / "runs" / name
    assert (run_dir / "checkpoints" / "last.ckpt").read_text() == "epoch 3"
    previous = (tmp_path / name / "logs.previous" / "master-0.log").read_text()
    assert "stand-in: saved epoch 3, then failed" in previous
    assert "stand-in" not in "\n".join(backend.logs(name))  # the new run's log is its own


def test_no_rerun_reports_the_failed_job(tmp_path: Path, failed_job, corejob):
    backend = LocalBackend(tmp_path)
    old = backend.get(failed_job)

    kept = corejob(*SUBMIT, "--backend", "local", "--runs-dir", str(tmp_path), "--no-rerun")

    assert kept.code == 0, kept.err
    assert kept.out == f"job {failed_job} already exists (state Failed); not submitted again\n"
    assert backend.get(failed_job) == old
