"""validate_job catches what the API server or the operator webhook would reject."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from corejob.job import validation
from corejob.job.validation import strict_schema, validate_job
from tests.chart.conftest import render


@pytest.fixture(scope="module")
def job() -> dict[str, Any]:
    return render(workers=2)


def mutated(job: dict[str, Any], change) -> dict[str, Any]:
    copied = copy.deepcopy(job)
    change(copied)
    return copied


def replicas(job: dict[str, Any]) -> dict[str, Any]:
    return job["spec"]["pytorchReplicaSpecs"]


def test_rendered_job_is_valid(job: dict[str, Any]) -> None:
    assert validate_job(job) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda j: replicas(j)["Master"].update(restartpolicy="Never"),
            "'restartpolicy' was unexpected",
        ),
        (lambda j: j["spec"].update(workers=2), "'workers' was unexpected"),
        (
            lambda j: replicas(j)["Worker"]["template"]["spec"]["containers"][0].update(gpus=1),
            "'gpus' was unexpected",
        ),
        (lambda j: j["metadata"].update(uid="x"), "'uid' was unexpected"),
        (lambda j: replicas(j)["Master"].update(replicas="1"), "'1' is not of type 'integer'"),
        (lambda j: j.update(kind="TFJob"), "'TFJob' is not one of ['PyTorchJob']"),
    ],
)
def test_strict_schema(job: dict[str, Any], change, expected: str) -> None:
    problems = validate_job(mutated(job, change))
    assert any(expected in problem for problem in problems), problems


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda j: replicas(j).pop("Master"), "needs exactly one Master"),
        (lambda j: replicas(j)["Master"].update(replicas=2), "[Master].replicas: must be 1"),
        (
            lambda j: replicas(j)["Worker"].update(replicas=0),
            "[Worker].replicas: must be at least 1",
        ),
        (
            lambda j: replicas(j).update(Chief=copy.deepcopy(replicas(j)["Worker"])),
            "[Chief]: unsupported replica type",
        ),
        (
            lambda j: replicas(j)["Worker"]["template"]["spec"]["containers"][0].update(
                name="main"
            ),
            "needs a container named 'pytorch'",
        ),
        (
            lambda j: replicas(j)["Master"]["template"]["spec"]["containers"][0].update(image=""),
            "containers[0].image: must be set",
        ),
        (lambda j: j["metadata"].update(name="Res_Small"), "is not a DNS-1035 label"),
        (lambda j: j["metadata"].update(name="a" * 51), "has 51 characters, at most 50"),
        (
            lambda j: replicas(j)["Master"].update(restartPolicy="Sometimes"),
            "restartPolicy: 'Sometimes' is not one of",
        ),
        (
            lambda j: j["metadata"]["labels"].update({"corejob.dev/model": "/abs/path.yaml"}),
            "invalid value '/abs/path.yaml'",
        ),
        (
            lambda j: (replicas(j).pop("Worker"), j["spec"].update(elasticPolicy={})),
            "required by elasticPolicy",
        ),
        (
            lambda j: j["spec"].update(elasticPolicy={"nProcPerNode": 2}),
            "must not be used with spec.nprocPerNode",
        ),
        (lambda j: j["spec"]["runPolicy"].update(managedBy="me"), "managedBy: 'me'"),
    ],
)
def test_webhook_rules(job: dict[str, Any], change, expected: str) -> None:
    problems = validate_job(mutated(job, change))
    assert any(expected in problem for problem in problems), problems


def test_strict_schema_keeps_maps_and_preserved_objects_open() -> None:
    schema = {
        "type": "object",
        "properties": {
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "raw": {
                "type": "object",
                "properties": {"a": {}},
                "x-kubernetes-preserve-unknown-fields": True,
            },
            "typed": {"type": "object", "properties": {"a": {}}},
        },
    }
    strict = strict_schema(schema)
    assert strict["additionalProperties"] is False
    assert strict["properties"]["typed"]["additionalProperties"] is False
    assert strict["properties"]["labels"]["additionalProperties"] == {"type": "string"}
    assert "additionalProperties" not in strict["properties"]["raw"]
    assert "additionalProperties" not in schema  # the input is not modified


def test_crd_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    repo = Path(validation.__file__).resolve().parents[2]
    vendored = repo / "manifests" / "crds" / validation.CRD_FILE
    assert vendored.is_file()
    monkeypatch.setenv(validation.CRD_PATH_ENV, str(vendored))
    assert validation.crd_path() == vendored
    monkeypatch.setenv(validation.CRD_PATH_ENV, str(tmp_path / "missing.yaml"))
    assert validate_job(render())[0].startswith("PyTorchJob CRD not found")


def test_vendored_crd_matches_shared_copy() -> None:
    repo = Path(validation.__file__).resolve().parents[2]
    shared = repo.parent / "shared" / "crds" / validation.CRD_FILE
    vendored = repo / "manifests" / "crds" / validation.CRD_FILE
    if shared.is_file():  # the shared copy exists in the team checkout, not in CI clones
        assert shared.read_bytes() == vendored.read_bytes()
    assert (vendored.parent / "LICENSE-kubeflow-training-operator").is_file()
