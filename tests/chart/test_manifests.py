"""manifests/: the kustomize base builds, every object passes kubernetes-validate strictly,
RBAC stays least-privilege, and the golden chart renders are up to date."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from corejob.job.examples import example_text
from corejob.job.validation import validate_job

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
K8S_VERSION = "1.35.0"


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize`` output as objects (kubectl is a CI prerequisite)."""
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is needed to build the kustomize base"
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def base_objects() -> list[dict[str, Any]]:
    return kustomize(MANIFESTS / "base")


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def test_base_builds_the_namespace_kit(base_objects: list[dict[str, Any]]) -> None:
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in base_objects)
    assert kinds == [
        ("LimitRange", "corejob-defaults"),
        ("Namespace", "corejob"),
        ("PersistentVolumeClaim", "corejob-checkpoints"),
        ("PersistentVolumeClaim", "corejob-data"),
        ("Role", "corejob-controller"),
        ("RoleBinding", "corejob-controller"),
        ("ServiceAccount", "corejob-controller"),
        ("ServiceAccount", "corejob-trainer"),
    ]
    for obj in base_objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "corejob"
    namespace = by_kind(base_objects, "Namespace")["corejob"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_base_objects_validate_strictly(base_objects: list[dict[str, Any]]) -> None:
    for obj in base_objects:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_strict_validation_would_catch_a_typo(base_objects: list[dict[str, Any]]) -> None:
    pvc = dict(by_kind(base_objects, "PersistentVolumeClaim")["corejob-data"])
    pvc["spec"] = {**pvc["spec"], "accesModes": ["ReadWriteMany"]}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pvc, K8S_VERSION, strict=True)


def test_controller_role_is_least_privilege(base_objects: list[dict[str, Any]]) -> None:
    rules = by_kind(base_objects, "Role")["corejob-controller"]["rules"]
    granted = {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    jobs = {
        (group, resource, v)
        for group, resource in (
            ("kubeflow.org", "pytorchjobs"),
            ("trainer.kubeflow.org", "trainjobs"),
        )
        for v in ("create", "get", "list", "watch", "delete")
    }
    runtimes = {
        ("trainer.kubeflow.org", "trainingruntimes", v) for v in ("create", "patch", "delete")
    }
    reads = {("", "pods", "list"), ("", "events", "list"), ("", "pods/log", "get")}
    reads.add(("", "configmaps", "create"))  # a job's own config files, owned by the job
    reads.add(("", "configmaps", "list"))  # the results ledger (one ConfigMap per run)
    reads |= {("", "pods", v) for v in ("create", "get", "delete")}  # results --from-claim
    kueue = {("kueue.x-k8s.io", "workloads", "list")}
    # what the CLI uses: tests/corejob/test_cli_rbac.py (and test_real_trainjob.py for TrainJobs)
    assert granted == jobs | runtimes | reads | kueue
    binding = by_kind(base_objects, "RoleBinding")["corejob-controller"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "corejob-controller",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "corejob-controller", "namespace": "corejob"}
    ]
    trainer = by_kind(base_objects, "ServiceAccount")["corejob-trainer"]
    assert trainer["automountServiceAccountToken"] is False


def test_pvcs_are_shared_between_replicas(base_objects: list[dict[str, Any]]) -> None:
    for claim in by_kind(base_objects, "PersistentVolumeClaim").values():
        assert claim["spec"]["accessModes"] == ["ReadWriteMany"]


def test_wandb_overlay_builds_the_secret_the_chart_references(tmp_path: Path) -> None:
    overlays = tmp_path / "manifests" / "overlays"
    shutil.copytree(MANIFESTS / "base", tmp_path / "manifests" / "base")
    shutil.copytree(MANIFESTS / "overlays" / "wandb-secret", overlays / "wandb-secret")
    (overlays / "wandb-secret" / "wandb.env").write_text("api-key=not-a-real-key\n")
    secrets = by_kind(kustomize(overlays / "wandb-secret"), "Secret")
    secret = secrets["corejob-wandb"]
    assert secret["metadata"]["namespace"] == "corejob"
    assert set(secret["data"]) == {"api-key"}
    kubernetes_validate.validate(secret, K8S_VERSION, strict=True)
    assert not (MANIFESTS / "overlays" / "wandb-secret" / "wandb.env").exists()


def golden_pairs() -> list[tuple[Path, Path]]:
    examples = MANIFESTS / "examples"
    return [
        (values, examples / values.name) for values in sorted((examples / "values").glob("*.yaml"))
    ]


@pytest.mark.parametrize(("values", "golden"), golden_pairs(), ids=lambda p: p.name)
def test_golden_render_is_up_to_date(values: Path, golden: Path) -> None:
    assert golden.is_file(), f"{golden} missing: run make manifests"
    assert example_text(values) == golden.read_text(), f"{golden} is stale: run make manifests"
    for obj in yaml.safe_load_all(golden.read_text()):  # the job, e.g. its TrainingRuntime
        if obj["kind"] == "ConfigMap":  # of shipped config files
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        else:
            assert validate_job(obj) == []


def test_no_orphan_golden_files() -> None:
    examples = MANIFESTS / "examples"
    expected = {golden.name for _, golden in golden_pairs()}
    assert {p.name for p in examples.glob("*.yaml")} == expected
    assert len(expected) >= 4


def test_base_moves_to_another_namespace_with_an_overlay(tmp_path: Path) -> None:
    shutil.copytree(MANIFESTS / "base", tmp_path / "base")
    (tmp_path / "mylab").mkdir()
    (tmp_path / "mylab" / "kustomization.yaml").write_text(
        "resources: [../base]\nnamespace: mylab\n"
    )
    objects = kustomize(tmp_path / "mylab")
    assert "mylab" in by_kind(objects, "Namespace")
    binding = by_kind(objects, "RoleBinding")["corejob-controller"]
    assert binding["subjects"][0]["namespace"] == "mylab"
    assert {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"} == {
        "mylab"
    }
