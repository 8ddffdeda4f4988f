"""checkov over the Dockerfile and the pods the chart's PyTorchJob makes the operator create.

checkov has no policies for the PyTorchJob kind itself, so the scan gets each replica's
pod template as the Pod the operator will create from it (same spec, the job's namespace).
Every skipped check is justified in image/checkov.yaml; anything else that fails, fails
the test. checkov pins many packages of its own, so it lives in its own virtualenv,
created here on first use outside the work tree (``$COREJOB_CHECKOV_VENV``, default
``~/.cache/corejob/venv-checkov``) so that CI's fresh clones on one machine share it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from corejob.job.render import render_job
from tests.support.podman import REPO

pytestmark = pytest.mark.slow

CHECKOV_VENV = Path(
    os.environ.get("COREJOB_CHECKOV_VENV", Path.home() / ".cache" / "corejob" / "venv-checkov")
)
CHECKOV_SPEC = "checkov==3.3.30"  # the version the skips were reviewed against
CONFIG = REPO / "image" / "checkov.yaml"
NAMESPACE = "neuro-lab"
SKIP_LINE = re.compile(r"^\s*-\s*(CKV2?_[A-Z0-9]+_\d+)\s*(#\s*(.*))?$")

# What users submit: a CPU demo and a multi-GPU run with volumes, a digest and W&B.
VALUE_SETS: dict[str, dict[str, Any]] = {
    "cpu-demo": {
        "model": "res_small",
        "dataset": "synthetic_tiny",
        "workers": 1,
        "image": {"repository": "localhost/corejob-trainer", "tag": "0.1.0"},
    },
    "gpu-cluster": {
        "model": "res_small",
        "dataset": "synthetic_mixed",
        "workers": 3,
        "gpusPerReplica": 2,
        "nprocPerNode": 2,
        "image": {"repository": "registry.example.org/lab/corejob-trainer", "tag": "0.1.0"},
        "data": {"existingClaim": "visual-cortex-data", "readOnly": True},
        "checkpoints": {"existingClaim": "corejob-runs"},
        "wandb": {"mode": "online", "apiKeySecret": {"name": "wandb"}},
    },
}


def _checkov() -> Path:
    exe = CHECKOV_VENV / "bin" / "checkov"
    wanted = CHECKOV_SPEC.split("==")[1]
    installed = (
        subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()
        if exe.exists()
        else None
    )
    if installed != wanted:
        subprocess.run([sys.executable, "-m", "venv", str(CHECKOV_VENV)], check=True)
        pip = [str(CHECKOV_VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, CHECKOV_SPEC], check=True, timeout=900)
    return exe


def operator_pods(job: dict[str, Any]) -> list[dict[str, Any]]:
    """The Pod objects the training operator creates from a PyTorchJob (one per type)."""
    name = job["metadata"]["name"]
    pods = []
    for replica_type, spec in job["spec"]["pytorchReplicaSpecs"].items():
        template = spec["template"]
        metadata = {
            "name": f"{name}-{replica_type.lower()}-0",
            "namespace": job["metadata"].get("namespace", NAMESPACE),
            "labels": template.get("metadata", {}).get("labels", {}),
        }
        pods.append(
            {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]}
        )
    return pods


def _write_manifests(directory: Path) -> list[Path]:
    paths = []
    for label, values in VALUE_SETS.items():
        job = render_job(values, namespace=NAMESPACE)
        path = directory / f"{label}.yaml"
        path.write_text(yaml.safe_dump_all([job, *operator_pods(job)], sort_keys=False))
        paths.append(path)
    return paths


def test_every_skipped_check_is_justified() -> None:
    skips = [SKIP_LINE.match(line) for line in CONFIG.read_text().splitlines()]
    skips = [m for m in skips if m]
    assert skips, "image/checkov.yaml lists no skip-check entries"
    for match in skips:
        reason = match.group(3) or ""
        assert len(reason) >= 40, f"{match.group(1)}: justify the skip in a comment"


def test_pods_of_the_rendered_job_keep_the_security_settings() -> None:
    """The derived pods carry the chart's restricted securityContext unchanged."""
    job = render_job(VALUE_SETS["cpu-demo"], namespace=NAMESPACE)
    for pod in operator_pods(job):
        container = pod["spec"]["containers"][0]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert pod["spec"]["securityContext"]["runAsUser"] == 1000
        assert pod["metadata"]["namespace"] == NAMESPACE


def test_checkov_passes_dockerfile_and_job_pods(tmp_path: Path) -> None:
    checkov = _checkov()
    files = [REPO / "image" / "Dockerfile", *_write_manifests(tmp_path)]
    proc = subprocess.run(
        [str(checkov), "--config-file", str(CONFIG), "--output", "json"]
        + [arg for f in files for arg in ("-f", str(f))],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    scanned = {r["check_type"]: r["summary"] for r in reports}
    assert {"dockerfile", "kubernetes"} <= scanned.keys(), proc.stderr[-2000:]
    assert all(s["passed"] > 0 for s in scanned.values()), scanned
    failed = [
        f"{c['check_id']} {c['check_name']} ({Path(c['file_path']).name} {c['resource']})"
        for r in reports
        for c in r["results"]["failed_checks"]
    ]
    assert failed == [], "\n".join(failed)
