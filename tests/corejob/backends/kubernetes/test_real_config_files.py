"""A model config of one's own reaches the pods: a ConfigMap owned by the job, on a real
API server, as the restricted user (tests/support/kube_real.py).

Before: ``-m ~/my_model.yaml`` went to the pod as that path, which no pod has.
"""

from __future__ import annotations

from pathlib import Path

from corejob.errors import ExitCode
from tests.corejob.conftest import Background
from tests.support.kube_real import HOLD_FINALIZER, MERGE_PATCH, KubeNamespace
from tests.support.wait import wait_until
from trainer.configs import CONFIGS_DIR

MOUNTED = "/etc/corejob/configs/my_model.yaml"


def own_model(directory: Path, extra: str = "") -> Path:
    path = directory / "my_model.yaml"
    path.write_text((CONFIGS_DIR / "models" / "res_small.yaml").read_text() + extra)
    return path


def config_map(kube: KubeNamespace, name: str) -> dict | None:
    status, body = kube.cluster.request("GET", f"/api/v1/namespaces/{kube.name}/configmaps/{name}")
    return body if status == 200 else None


def test_the_file_goes_with_the_job_and_goes_away_with_it(kube, corejob, tmp_path):
    model = own_model(tmp_path)
    submitted = corejob("submit", "-m", str(model), "-d", "synthetic_tiny")
    assert submitted.code == 0, submitted.err
    name = submitted.out.split()[2]
    shipped = config_map(kube, f"{name}-configs")
    job = kube.job(name)
    assert shipped["data"] == {"my_model.yaml": model.read_text()}
    assert shipped["metadata"]["ownerReferences"] == [
        {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "name": name,
         "uid": job["metadata"]["uid"]}
    ]  # fmt: skip
    assert f"sent my_model.yaml with job {name} as ConfigMap {name}-configs" in submitted.err
    pod = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"][container["args"].index("--model_config") + 1] == MOUNTED
    assert {"name": "configs", "mountPath": "/etc/corejob/configs", "readOnly": True} in (
        container["volumeMounts"]
    )
    items = [{"key": "my_model.yaml", "path": "my_model.yaml"}]
    assert {"name": "configs", "configMap": {"name": f"{name}-configs", "items": items}} in (
        pod["volumes"]
    )

    again = corejob("submit", "-m", str(model), "-d", "synthetic_tiny")  # same file: same job
    assert again.code == 0 and f"job {name} already exists" in again.out
    edited = corejob("submit", "-m", str(own_model(tmp_path, "# edited\n")), "-d", "synthetic_tiny")
    assert edited.code == 0 and edited.out.split()[2] != name  # new content: a new job

    assert corejob("cancel", name).code == 0
    wait_until(lambda: config_map(kube, f"{name}-configs") is None, 90,
               "the garbage collector to delete the job's ConfigMap")  # fmt: skip


def test_a_configmap_that_cannot_be_created_takes_its_job_back(kube, corejob, tmp_path):
    """Nothing half-submitted: a job whose pods could never mount their config is deleted."""
    quota = f"/api/v1/namespaces/{kube.name}/resourcequotas"
    kube.cluster.ok(
        "POST", quota, {"metadata": {"name": "cm"}, "spec": {"hard": {"configmaps": "0"}}}
    )
    wait_until(lambda: (kube.cluster.ok("GET", f"{quota}/cm").get("status") or {}).get("hard"),
               60, "the ConfigMap quota to be in force")  # fmt: skip
    result = corejob("submit", "-m", str(own_model(tmp_path)), "-d", "synthetic_tiny")
    assert result.code == ExitCode.FORBIDDEN
    (error,) = [line for line in result.err.splitlines() if "warning:" not in line]
    assert error.startswith("corejob: error: configmaps ") and "exceeded quota" in error
    assert error.endswith("was deleted again: nothing was submitted")
    wait_until(lambda: kube.jobs() == [], 60, "the job to be deleted")
    assert [e["verb"] for e in kube.requests(resource="pytorchjobs")][-2:] == ["create", "delete"]


def test_a_new_job_waits_for_its_predecessors_configmap_to_be_collected(kube, corejob, tmp_path):
    """A rerun (cancel, then the same job again) may find the old ConfigMap not yet deleted:
    the submit creates again until the collector has removed it, and never adopts it."""
    model = own_model(tmp_path)
    first = corejob("submit", "-m", str(model), "-d", "synthetic_tiny")
    name, old = first.out.split()[2], f"{first.out.split()[2]}-configs"
    assert corejob("cancel", name).code == 0
    wait_until(lambda: kube.job(name) is None and config_map(kube, old) is None, 90, "the old job")
    stale = {  # the predecessor's, held by a finalizer while the collector deletes it
        "metadata": {"name": old, "finalizers": [HOLD_FINALIZER], "ownerReferences": [
            {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "name": name,
             "uid": "00000000-0000-0000-0000-000000000000"}]},
        "data": {"my_model.yaml": "stale"},
    }  # fmt: skip
    kube.cluster.ok("POST", f"/api/v1/namespaces/{kube.name}/configmaps", stale)
    wait_until(lambda: config_map(kube, old)["metadata"].get("deletionTimestamp"), 90,
               "the collector to delete the stale ConfigMap (its owner is gone)")  # fmt: skip
    again = Background("submit", "-m", str(model), "-d", "synthetic_tiny")
    wait_until(lambda: len(kube.requests("create", "configmaps")) >= 3, 30, "create retried")
    kube.cluster.ok("PATCH", f"/api/v1/namespaces/{kube.name}/configmaps/{old}",
                    {"metadata": {"finalizers": None}}, content_type=MERGE_PATCH)  # fmt: skip
    assert again.join(30) == ExitCode.OK
    shipped = config_map(kube, old)
    assert shipped["data"] == {"my_model.yaml": model.read_text()}
    assert shipped["metadata"]["ownerReferences"][0]["uid"] == kube.job(name)["metadata"]["uid"]
