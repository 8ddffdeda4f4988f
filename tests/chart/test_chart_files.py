"""The chart as a package: lint clean, NOTES, the test hook, the README."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import helm_python
import kubernetes_validate
import pytest
import yaml

from corejob.job.render import chart_dir, parse_documents, render_job, render_manifests
from tests.chart.conftest import values

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "corejob"
LINT_VALUES = CHART / "ci" / "test-values.yaml"
WARNING = 2  # helm lint severities: 1 info, 2 warning, 3 error


def lint(values_: dict[str, Any] | None) -> dict[str, Any]:
    return helm_python.lint(CHART, values_, strict=True, kube_version="v1.30.0")


def test_chart_dir_is_this_checkout() -> None:
    assert chart_dir() == CHART


def test_chart_dir_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    copy = tmp_path / "chart"
    shutil.copytree(CHART, copy)
    (copy / "Chart.yaml").write_text(
        (copy / "Chart.yaml").read_text().replace("version: 0.1.0", "version: 9.9.9")
    )
    monkeypatch.setenv("COREJOB_CHART_DIR", str(copy))
    assert chart_dir() == copy
    job = render_job(values())
    assert job["metadata"]["labels"]["helm.sh/chart"] == "corejob-9.9.9"


def test_render_and_validate_do_not_import_torch() -> None:
    """The controller runs on laptops without the trainer's dependencies."""
    code = (
        "import sys; from corejob.job.render import render_job; "
        "from corejob.job.validation import validate_job; "
        "job = render_job({'model': 'm', 'dataset': 'd', 'image': {'repository': 'r'}}); "
        "assert validate_job(job) == []; "
        "assert 'torch' not in sys.modules and 'trainer' not in sys.modules"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_lint_strict_is_clean() -> None:
    report = lint(yaml.safe_load(LINT_VALUES.read_text()))
    assert report["errors"] == []
    serious = [m for m in report["messages"] if m["severity"] >= WARNING]
    assert serious == []


def test_lint_catches_bad_values() -> None:
    """Proves the lint above can fail: the schema is part of lint."""
    report = lint({**yaml.safe_load(LINT_VALUES.read_text()), "workers": -1})
    assert any("minimum: got -1" in m["error"] for m in report["messages"])


def notes(**overrides: Any) -> str:
    manifests = render_manifests(values(**overrides), release_name="exp1", namespace="lab")
    return manifests["corejob/templates/NOTES.txt"]


def test_notes_print_the_next_commands() -> None:
    text = notes(workers=3)
    assert "kubectl get pytorchjob exp1 -n lab -w" in text
    assert (
        "kubectl logs -n lab -f -l "
        "training.kubeflow.org/job-name=exp1,training.kubeflow.org/job-role=master" in text
    )
    assert "--prefix --max-log-requests 4 -l training.kubeflow.org/job-name=exp1" in text
    assert "helm uninstall exp1 -n lab" in text
    assert "kubectl delete pytorchjob exp1 -n lab" in text
    assert "emptyDir" in text  # warns that checkpoints do not survive the pod


def test_notes_for_a_suspended_job_on_a_claim() -> None:
    text = notes(runPolicy={"suspend": True}, checkpoints={"existingClaim": "ckpt"})
    assert '"suspend":false' in text
    assert "WARNING" not in text
    assert "PVC ckpt" in text


def test_helm_test_hook_is_optional_and_valid() -> None:
    assert len(parse_documents(render_manifests(values()))) == 1
    objects = parse_documents(render_manifests(values(tests={"enabled": True})))
    (pod,) = [o for o in objects if o["kind"] == "Pod"]
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    kubernetes_validate.validate(pod, "1.35.0", strict=True)


def test_pod_templates_are_valid_core_pods() -> None:
    """The replica pod templates also pass Kubernetes' own strict Pod schema."""
    job = yaml.safe_load((REPO / "manifests/examples/gpu-torchrun-wandb.yaml").read_text())
    for replica in job["spec"]["pytorchReplicaSpecs"].values():
        pod = {"apiVersion": "v1", "kind": "Pod", **replica["template"]}
        pod["metadata"] = {**pod["metadata"], "name": "pod"}
        kubernetes_validate.validate(pod, "1.35.0", strict=True)


def schema_paths(schema: dict[str, Any], prefix: str = "") -> list[str]:
    """Every key path the values schema defines (objects are walked, maps are leaves)."""
    paths = []
    for key, child in schema.get("properties", {}).items():
        path = f"{prefix}{key}"
        paths.append(path)
        paths += schema_paths(child, f"{path}.")
    return paths


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json.loads((CHART / "values.schema.json").read_text())


def test_readme_documents_every_value(schema: dict[str, Any]) -> None:
    readme = (CHART / "README.md").read_text()
    missing = [p for p in schema_paths(schema) if f"`{p}`" not in readme]
    assert missing == []


def test_defaults_satisfy_the_schema_and_cover_it(schema: dict[str, Any]) -> None:
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    documented = set(schema_paths(schema))
    for path in schema_paths({"properties": {k: _as_schema(v) for k, v in defaults.items()}}):
        assert path in documented, f"values.yaml key {path} is not in values.schema.json"


def _as_schema(value: Any) -> dict[str, Any]:
    if isinstance(value, dict) and value:
        return {"properties": {k: _as_schema(v) for k, v in value.items()}}
    return {}
