"""PyTorchJob objects for the local backend tests: rendered by the chart, or hand-made."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import pytest

from corejob.backends.local.backend import LocalBackend
from corejob.job.render import render_job

IMAGE = {"repository": "localhost/corejob-trainer", "tag": "test"}


def chart_job(name: str, workers: int = 1, **values: Any) -> dict[str, Any]:
    """The chart's PyTorchJob for the tiny synthetic preset (what `corejob submit` sends)."""
    merged = {
        "model": "res_small",
        "dataset": "synthetic_tiny",
        "workers": workers,
        "jobName": name,
        "image": IMAGE,
        "wandb": {"mode": "disabled"},  # tests always set it (the chart's default: offline)
    }
    merged.update(values)
    return render_job(merged)


def script_job(name: str, script: str, workers: int = 1, **run_policy: Any) -> dict[str, Any]:
    """The chart's job shape, with the trainer replaced by a small Python program.

    Lets the supervisor's restart/deadline/cancel rules be tested in milliseconds; the
    program sees the same operator env and mapped volumes the trainer would.
    """
    job = chart_job(name, workers=workers)
    for spec in job["spec"]["pytorchReplicaSpecs"].values():
        container = spec["template"]["spec"]["containers"][0]
        container["command"] = [sys.executable, "-c", script]
        container["args"] = ["/runs/" + name]
        spec["template"]["spec"]["terminationGracePeriodSeconds"] = 5
    job["spec"]["runPolicy"].update(run_policy)
    return copy.deepcopy(job)


@pytest.fixture(autouse=True)
def no_leftover_jobs(tmp_path: Path):
    """Cancel every local job a test left under ``tmp_path`` (no stray supervisors)."""
    yield
    backend = LocalBackend(tmp_path)
    for name in backend.store.names():
        backend.cancel(name)
