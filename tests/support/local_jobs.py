"""PyTorchJob objects for the local backend tests: rendered by the chart, or hand-made."""

from __future__ import annotations

import copy
import sys
from typing import Any

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
