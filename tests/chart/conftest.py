"""Fixtures for the chart tests: minimal valid values and job accessors."""

from __future__ import annotations

from typing import Any

import pytest

from corejob.job.render import render_job
from corejob.job.values import merge_values

BASE_VALUES: dict[str, Any] = {
    "model": "res_small",
    "dataset": "synthetic_mixed",
    "image": {"repository": "localhost/corejob-trainer"},
}


def values(**overrides: Any) -> dict[str, Any]:
    """Minimal valid values with ``overrides`` deep-merged in."""
    return merge_values(BASE_VALUES, overrides)


def render(**overrides: Any) -> dict[str, Any]:
    """The PyTorchJob for minimal values plus ``overrides``."""
    return render_job(values(**overrides))


def pod_spec(job: dict[str, Any], role: str = "Master") -> dict[str, Any]:
    return job["spec"]["pytorchReplicaSpecs"][role]["template"]["spec"]


def container(job: dict[str, Any], role: str = "Master") -> dict[str, Any]:
    (only,) = pod_spec(job, role)["containers"]
    return only


def env_of(job: dict[str, Any], role: str = "Master") -> dict[str, Any]:
    """Container env as {name: value or valueFrom}; fails on duplicate names."""
    entries = container(job, role)["env"]
    names = [entry["name"] for entry in entries]
    assert len(names) == len(set(names)), f"duplicate env names: {names}"
    return {entry["name"]: entry.get("value", entry.get("valueFrom")) for entry in entries}


@pytest.fixture
def base_values() -> dict[str, Any]:
    return values()
