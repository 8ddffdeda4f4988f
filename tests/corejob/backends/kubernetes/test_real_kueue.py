"""Jobs queued with Kueue (chart value queueName), on a real API server with Kueue's CRDs.

No Kueue controller runs: the test creates the queue objects as a cluster admin would
(checking that Kueue's v1beta2 CRDs accept them) and the Workload as Kueue would.
"""

from __future__ import annotations

from tests.support.kube_real import KubeNamespace
from tests.support.kube_wire import now_rfc3339

KUEUE = "/apis/kueue.x-k8s.io/v1beta2"


def kueue(kind: str, body: dict) -> dict:
    return {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": kind, **body}


NO_ROOM = "couldn't assign flavors to pod set master: insufficient unused quota for cpu"


def make_queue(kube: KubeNamespace, name: str) -> None:
    """ResourceFlavor + ClusterQueue + LocalQueue, as a Kueue admin sets them up."""
    cluster = kube.cluster
    flavor = f"flavor-{kube.name}"
    cluster.ok(
        "POST",
        f"{KUEUE}/resourceflavors",
        kueue("ResourceFlavor", {"metadata": {"name": flavor}, "spec": {}}),
    )
    quota = {"name": "cpu", "nominalQuota": "4"}
    cluster.ok(
        "POST",
        f"{KUEUE}/clusterqueues",
        {
            "apiVersion": "kueue.x-k8s.io/v1beta2",
            "kind": "ClusterQueue",
            "metadata": {"name": f"cq-{kube.name}"},
            "spec": {
                "namespaceSelector": {},
                "resourceGroups": [
                    {
                        "coveredResources": ["cpu"],
                        "flavors": [{"name": flavor, "resources": [quota]}],
                    }
                ],
            },
        },
    )
    cluster.ok(
        "POST",
        f"{KUEUE}/namespaces/{kube.name}/localqueues",
        kueue(
            "LocalQueue", {"metadata": {"name": name}, "spec": {"clusterQueue": f"cq-{kube.name}"}}
        ),
    )


def make_workload(kube: KubeNamespace, job: dict, admitted: bool) -> str:
    """The Workload Kueue makes for a queued job, with the conditions it would set."""
    meta = job["metadata"]
    name = f"pytorchjob-{meta['name']}-1a2b3"
    pod_set = {
        "name": "master",
        "count": 1,
        "template": {"spec": {"containers": [{"name": "pytorch", "image": "trainer"}]}},
    }
    workload = {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "Workload",
        "metadata": {
            "name": name,
            "labels": {"kueue.x-k8s.io/job-uid": meta["uid"]},
            "ownerReferences": [
                {
                    "apiVersion": "kubeflow.org/v1",
                    "kind": "PyTorchJob",
                    "name": meta["name"],
                    "uid": meta["uid"],
                }
            ],
        },
        "spec": {"queueName": meta["labels"]["kueue.x-k8s.io/queue-name"], "podSets": [pod_set]},
    }
    path = f"{KUEUE}/namespaces/{kube.name}/workloads"
    kube.cluster.ok("POST", path, workload)
    condition = {
        "type": "QuotaReserved",
        "status": "False",
        "reason": "Pending",
        "message": NO_ROOM,
        "lastTransitionTime": now_rfc3339(),
    }
    if admitted:
        condition = dict(
            condition,
            type="Admitted",
            status="True",
            reason="Admitted",
            message="The workload is admitted",
        )
    kube.patch_status(f"{path}/{name}", {"conditions": [condition]})
    return name


def test_a_queued_job_is_created_suspended_with_the_queue_label(kube, corejob):
    make_queue(kube, "lab-queue")
    result = corejob("submit", "-m", "res_small", "--set", "queueName=lab-queue")
    assert result.code == 0, result.err
    job = kube.job(result.out.split()[2])
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "lab-queue"
    assert job["spec"]["runPolicy"]["suspend"] is True
    unqueued = kube.job(corejob("submit", "-m", "res_small_gru").out.split()[2])
    assert "kueue.x-k8s.io/queue-name" not in unqueued["metadata"]["labels"]
    assert unqueued["spec"]["runPolicy"]["suspend"] is False


def test_status_explains_why_kueue_holds_the_job(kube, corejob):
    make_queue(kube, "lab-queue")
    name = corejob("submit", "-m", "res_small", "--set", "queueName=lab-queue").out.split()[2]
    before = corejob("status", name)
    assert (
        f"{name}: held by Kueue: suspended until LocalQueue 'lab-queue' admits it, but "
        "Kueue has made no Workload for it" in before.out
    )
    workload = make_workload(kube, kube.job(name), admitted=False)
    kube.set_condition(name, "Suspended", "PyTorchJobSuspended", "PyTorchJob is suspended.")
    held = corejob("status", name)
    assert held.code == 0
    assert "Suspended" in next(line for line in held.out.splitlines() if line.startswith(name))
    assert (
        f"{name}: held by Kueue: suspended until LocalQueue 'lab-queue' admits it; "
        f"Workload {workload}: QuotaReserved False: Pending: {NO_ROOM}"
    ) in held.out
    assert "operator has created no pods" not in held.out
