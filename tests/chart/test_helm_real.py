"""The chart and manifests with the real tools: helm v4 (lint, template, install, upgrade,
uninstall) and kubectl 1.35 (server-side apply of manifests/base) against a real v1.20.2
API server (tests/support/kube_real.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from corejob.job.examples import example_text
from tests.support.kube_real import KubeNamespace, RealCluster
from tests.support.wait import wait_until

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "corejob"
EXAMPLES = sorted((REPO / "manifests" / "examples" / "values").glob("*.yaml"))


def kind(obj: dict) -> str:
    return obj["kind"]


def test_helm_lint_strict_is_clean(real_cluster: RealCluster):
    linted = real_cluster.helm(
        "lint", "--strict", str(CHART), "-f", str(CHART / "ci" / "test-values.yaml")
    )
    assert "1 chart(s) linted, 0 chart(s) failed" in linted.stdout
    assert "[WARNING]" not in linted.stdout and "[ERROR]" not in linted.stdout


@pytest.mark.parametrize("values", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_helm_template_is_corejob_render(real_cluster: RealCluster, values: Path):
    """The golden renders (corejob's Helm engine) are what the real helm prints."""
    printed = real_cluster.helm("template", "corejob", str(CHART), "-f", str(values)).stdout
    objects = [doc for doc in yaml.safe_load_all(printed) if doc and doc["kind"] != "Pod"]
    # the job, then e.g. its TrainingRuntime or ConfigMap; helm orders documents its own way
    golden = list(yaml.safe_load_all(example_text(values)))
    assert sorted(objects, key=kind) == sorted(golden, key=kind)


def test_helm_install_upgrade_uninstall_on_a_real_server(real_cluster: RealCluster):
    kube: KubeNamespace = real_cluster.new_namespace("helm")
    helm = ("-n", kube.name, "--set", "model=res_small", "--set", "dataset=synthetic_mixed",
            "--set", "image.repository=localhost/corejob-trainer")  # fmt: skip
    real_cluster.helm("install", "exp1", str(CHART), *helm, "--set", "queueName=lab",
                      "--set", "workers=0")  # fmt: skip
    (job,) = kube.jobs()
    assert job["metadata"]["labels"]["app.kubernetes.io/instance"] == "exp1"
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "lab"
    assert job["spec"]["runPolicy"]["suspend"] is True
    assert "Worker" not in job["spec"]["pytorchReplicaSpecs"]

    real_cluster.helm("upgrade", "exp1", str(CHART), *helm, "--set", "workers=2")
    (upgraded,) = kube.jobs()
    assert upgraded["metadata"]["uid"] == job["metadata"]["uid"]  # changed in place
    assert upgraded["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] == 2
    assert upgraded["spec"]["runPolicy"]["suspend"] is False
    listed = real_cluster.helm("list", "-n", kube.name, "-o", "yaml").stdout
    assert [(r["name"], r["revision"], r["status"]) for r in yaml.safe_load(listed)] == [
        ("exp1", "2", "deployed")
    ]

    real_cluster.helm("uninstall", "exp1", "-n", kube.name)
    wait_until(lambda: kube.jobs() == [], 30, "helm uninstall to remove the job")


def test_manifests_base_apply_server_side(real_cluster: RealCluster):
    base = str(REPO / "manifests" / "base")
    first = real_cluster.kubectl("apply", "-k", base, "--server-side")
    assert "namespace/corejob serverside-applied" in first.stdout
    again = real_cluster.kubectl("apply", "-k", base, "--server-side")
    assert again.returncode == 0
    got = real_cluster.kubectl(
        "get", "-n", "corejob", "serviceaccount,role,rolebinding,pvc,limitrange", "-o", "name"
    ).stdout.split()
    for name in (
        "serviceaccount/corejob-controller",
        "serviceaccount/corejob-trainer",
        "role.rbac.authorization.k8s.io/corejob-controller",
        "rolebinding.rbac.authorization.k8s.io/corejob-controller",
        "persistentvolumeclaim/corejob-data",
        "persistentvolumeclaim/corejob-checkpoints",
    ):
        assert name in got
    can = real_cluster.kubectl(
        "auth",
        "can-i",
        "create",
        "pytorchjobs.kubeflow.org",
        "-n",
        "corejob",
        "--as",
        "system:serviceaccount:corejob:corejob-controller",
    )
    assert can.stdout.strip() == "yes"
    cannot = real_cluster.kubectl(
        "auth",
        "can-i",
        "get",
        "secrets",
        "-n",
        "corejob",
        "--as",
        "system:serviceaccount:corejob:corejob-controller",
        check=False,
    )
    assert cannot.stdout.strip() == "no"
