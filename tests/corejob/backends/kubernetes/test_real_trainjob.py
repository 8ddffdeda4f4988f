"""TrainJobs against the real API server (v1.20): Kubeflow Trainer v2.3's TrainJob and
TrainingRuntime CRDs installed (their CEL rules stripped: 1.20 has none), the chart's renders
stored without a field pruned, and the controller, as the restricted user, submitting,
tracking and cancelling TrainJobs (the test plays the Trainer: it PATCHes status)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from corejob.errors import ExitCode
from corejob.job.render import render_objects
from corejob.job.state import LABEL_SWEEP
from corejob.job.values import read_values_file
from tests.corejob.backends.kubernetes.test_real_config_files import (
    MOUNTED,
    config_map,
    own_model,
)
from tests.corejob.conftest import Background
from tests.corejob.test_cli_rbac import role_grants
from tests.support.kube_real import MERGE_PATCH, KubeNamespace, RealCluster
from tests.support.kube_server import OPERATOR, REPO
from tests.support.wait import wait_until

CRDS = [
    REPO / "manifests" / "crds" / f"trainer.kubeflow.org_{plural}.yaml"
    for plural in ("trainjobs", "trainingruntimes")
]
EXAMPLES = REPO / "manifests" / "examples" / "values"
API = "/apis/trainer.kubeflow.org/v1alpha1/namespaces/{ns}/{plural}"
PLURALS = {"TrainJob": "trainjobs", "TrainingRuntime": "trainingruntimes"}


@pytest.fixture(scope="module")
def trainer_v2(real_cluster: RealCluster) -> Iterator[RealCluster]:
    """Trainer v2's CRDs for this module (next to the PyTorchJob's), removed afterwards so
    that the rest of the session sees the cluster as it was."""
    names = [real_cluster.install_crd(path, lenient=True) for path in CRDS]
    yield real_cluster
    for name in names:
        real_cluster.request(
            "DELETE", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
        )


def pruned(sent: Any, stored: Any, where: str = "spec") -> list[str]:
    """Fields of ``sent`` that ``stored`` lacks or changed (server defaults may be added)."""
    if isinstance(sent, dict):
        if not isinstance(stored, dict):
            return [where]
        return [
            lost
            for key, value in sent.items()
            for lost in (
                pruned(value, stored[key], f"{where}.{key}")
                if key in stored
                else [f"{where}.{key}"]
            )
        ]
    if isinstance(sent, list):
        if not isinstance(stored, list) or len(sent) != len(stored):
            return [where]
        return [
            lost
            for i, pair in enumerate(zip(sent, stored, strict=True))
            for lost in pruned(*pair, f"{where}[{i}]")
        ]
    return [] if sent == stored else [f"{where}: {sent!r} became {stored!r}"]


@pytest.mark.parametrize("values", ["trainjob-cpu-ddp.yaml", "trainjob-gpu-runtime.yaml"])
def test_the_server_stores_every_field_of_the_renders(trainer_v2, kube: KubeNamespace, values):
    objects = render_objects(read_values_file(str(EXAMPLES / values)))
    for obj in reversed(objects):  # a TrainingRuntime before the TrainJob naming it
        path = API.format(ns=kube.name, plural=PLURALS[obj["kind"]])
        trainer_v2.ok("POST", path, obj)
        stored = trainer_v2.ok("GET", f"{path}/{obj['metadata']['name']}")
        assert pruned(obj["spec"], stored["spec"]) == [], obj["kind"]
        assert stored["metadata"]["labels"] == obj["metadata"]["labels"]


def trainer_status(kube: KubeNamespace, name: str, condition: str | None, active: int) -> None:
    """What the Trainer controller writes: conditions and the child Job counts."""
    status: dict[str, Any] = {
        "jobsStatus": [
            {
                "name": "node",
                "active": active,
                "ready": active,
                "succeeded": 0,
                "failed": 0,
                "suspended": 0,
            }
        ]
    }
    if condition:
        status["conditions"] = [
            {
                "type": condition,
                "status": "True",
                "reason": "JobSetCompleted",
                "message": "done",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
        ]
    kube.cluster.ok(
        "PATCH",
        f"{API.format(ns=kube.name, plural='trainjobs')}/{name}/status",
        {"status": status},
        content_type=MERGE_PATCH,
        user=OPERATOR,
    )


def test_submit_status_sweep_cancel_of_trainjobs_as_the_restricted_user(trainer_v2, kube, corejob):
    submitted = corejob(
        "submit",
        "-m",
        "res_small",
        "-d",
        "synthetic_tiny",
        "--workers",
        "1",
        "--set",
        "apiFlavor=trainjob",
        "--set",
        "trainJob.runtime.create=true",
    )
    assert submitted.code == 0, submitted.err
    name = submitted.out.split()[2]
    jobs, runtimes = (API.format(ns=kube.name, plural=p) for p in ("trainjobs", "trainingruntimes"))
    job = trainer_v2.ok("GET", f"{jobs}/{name}")
    runtime = trainer_v2.ok("GET", f"{runtimes}/{name}")
    assert runtime["metadata"]["ownerReferences"][0]["uid"] == job["metadata"]["uid"]
    creates = [e["objectRef"]["resource"] for e in kube.requests("create")]
    assert creates == [
        "trainingruntimes",
        "trainjobs",
    ]  # the runtime first, as Trainer's webhook wants

    trainer_status(kube, name, None, active=1)
    row = next(line for line in corejob("status").out.splitlines() if line.startswith(name))
    assert row.split()[3:5] == ["Running", "TrainJob"]
    trainer_status(kube, name, "Complete", active=0)
    assert "Succeeded" in corejob("status", name).out

    sweep = Background(
        "sweep",
        "--models",
        "res_small",
        "--datasets",
        "synthetic_mixed",
        "--name",
        "tj",
        "--poll",
        "0.2",
        "--set",
        "apiFlavor=trainjob",
    )
    listing = f"{jobs}?labelSelector={LABEL_SWEEP}=tj"
    (cell,) = wait_until(lambda: trainer_v2.ok("GET", listing)["items"], 30, "the sweep's job")
    trainer_status(kube, cell["metadata"]["name"], "Complete", active=0)
    assert sweep.join(60) == ExitCode.OK

    assert corejob("cancel", name).code == 0
    wait_until(lambda: trainer_v2.request("GET", f"{jobs}/{name}")[0] == 404, 60, f"{name} gone")
    assert trainer_v2.request("GET", f"{runtimes}/{name}")[0] == 404

    # The controller Role's Trainer v2 grants are exactly what this used (test_cli_rbac.py
    # checks the rest), and none was denied.
    used = {
        (e["objectRef"].get("apiGroup", ""), e["objectRef"]["resource"], e["verb"]): e
        for e in kube.requests()
        if not e["objectRef"].get("subresource")
    }
    assert not [key for key, e in used.items() if e["responseStatus"]["code"] == 403]
    trainer = {key for key in used if key[0] == "trainer.kubeflow.org"}
    assert trainer == {key for key in role_grants() if key[0] == "trainer.kubeflow.org"}


def test_the_garbage_collector_removes_an_orphaned_runtime(trainer_v2, kube, corejob):
    """The owner reference is real: deleting the TrainJob by hand (kubectl) takes its runtime."""
    submitted = corejob(
        "submit",
        "-m",
        "res_small",
        "-d",
        "synthetic_tiny",
        "--set",
        "apiFlavor=trainjob",
        "--set",
        "trainJob.runtime.create=true",
    )
    name = submitted.out.split()[2]
    jobs, runtimes = (API.format(ns=kube.name, plural=p) for p in ("trainjobs", "trainingruntimes"))
    trainer_v2.ok("DELETE", f"{jobs}/{name}")
    wait_until(
        lambda: trainer_v2.request("GET", f"{runtimes}/{name}")[0] == 404,
        60,
        "the garbage collector to delete the runtime",
    )


def test_with_both_apis_discovery_keeps_the_default_flavour(trainer_v2, kube, corejob):
    submitted = corejob("submit", "-m", "res_small", "-d", "synthetic_tiny")
    assert submitted.code == 0, submitted.err
    name = submitted.out.split()[2]
    assert kube.job(name) is not None  # a PyTorchJob, found by the restricted user's discovery
    assert (
        trainer_v2.request("GET", f"{API.format(ns=kube.name, plural='trainjobs')}/{name}")[0]
        == 404
    )


def test_a_trainjob_owns_its_shipped_config_files(trainer_v2, kube, corejob, tmp_path):
    """-m ~/my_model.yaml with a TrainJob: the runtime first, the job, then its ConfigMap
    owned by the TrainJob; the server keeps the mount in both pod templates; cancel takes
    all three."""
    model = own_model(tmp_path)
    flavor = ["--set", "apiFlavor=trainjob", "--set", "trainJob.runtime.create=true"]
    submitted = corejob("submit", "-m", str(model), "-d", "synthetic_tiny", *flavor)
    assert submitted.code == 0, submitted.err
    name = submitted.out.split()[2]
    jobs, runtimes = (API.format(ns=kube.name, plural=p) for p in ("trainjobs", "trainingruntimes"))
    job = trainer_v2.ok("GET", f"{jobs}/{name}")
    creates = [e["objectRef"]["resource"] for e in kube.requests("create")]
    assert creates == ["trainingruntimes", "trainjobs", "configmaps"]
    shipped = config_map(kube, f"{name}-configs")
    assert shipped["data"] == {"my_model.yaml": model.read_text()}
    assert shipped["metadata"]["ownerReferences"] == [
        {"apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob", "name": name,
         "uid": job["metadata"]["uid"]}
    ]  # fmt: skip
    args = job["spec"]["trainer"]["args"]
    assert args[args.index("--model_config") + 1] == MOUNTED
    patch = job["spec"]["runtimePatches"][0]["trainingRuntimeSpec"]["template"]["spec"]
    runtime = trainer_v2.ok("GET", f"{runtimes}/{name}")["spec"]["template"]["spec"]
    for pod in (patch["replicatedJobs"][0], runtime["replicatedJobs"][0]):
        pod_spec = pod["template"]["spec"]["template"]["spec"]
        assert f"{name}-configs" in [
            v.get("configMap", {}).get("name") for v in pod_spec["volumes"]
        ]
        assert "configs" in [m["name"] for m in pod_spec["containers"][0]["volumeMounts"]]

    assert corejob("cancel", name).code == 0
    wait_until(lambda: config_map(kube, f"{name}-configs") is None, 90,
               "the garbage collector to delete the TrainJob's ConfigMap")  # fmt: skip
    assert trainer_v2.request("GET", f"{runtimes}/{name}")[0] == 404
