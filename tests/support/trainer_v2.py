"""What Kubeflow Trainer v2 and JobSet would do to a TrainJob, as API calls on the fake
cluster: conditions (``Suspended``/``Complete``/``Failed``) and ``jobsStatus`` on the status
subresource, and the JobSet's node pods with the labels the real controllers set."""

from __future__ import annotations

from typing import Any

from tests.support.kube_cluster import FakeCluster, Operator
from tests.support.kube_wire import now_rfc3339

TRAINJOBS = "/apis/trainer.kubeflow.org/v1alpha1/namespaces/{ns}/trainjobs"
TRAINJOB_RESOURCES = (
    "trainer.kubeflow.org/v1alpha1/trainjobs",
    "trainer.kubeflow.org/v1alpha1/trainingruntimes",
    "trainer.kubeflow.org/v1alpha1/clustertrainingruntimes",
)


def uninstall(cluster: FakeCluster, *resources: str) -> None:
    """Take CRDs out of the cluster (``kubeflow.org/v1/pytorchjobs``, ...)."""
    for resource in resources:
        cluster.call(cluster.emulator.resources.__delitem__, resource)


class TrainerController(Operator):
    """The Trainer controller, JobSet and kubelet for TrainJobs, over HTTP."""

    def trainjob(self, name: str) -> dict[str, Any] | None:
        code, body = self.request("GET", f"{TRAINJOBS.format(ns=self.namespace)}/{name}")
        return body if code == 200 else None

    def set_status(
        self, job: str, condition: str | None = None, active: int = 0, reason: str = ""
    ) -> None:
        """``condition`` True (None: none yet) with the child Job counts the Trainer reports."""
        status: dict[str, Any] = {
            "jobsStatus": [
                {"name": "node", "active": active, "ready": active, "succeeded": 0, "failed": 0}
            ]
        }
        if condition:
            status["conditions"] = [
                {
                    "type": condition,
                    "status": "True",
                    "reason": reason or f"JobSet{condition}",
                    "message": f"TrainJob {job} is {condition.lower()}",
                    "lastTransitionTime": now_rfc3339(),
                }
            ]
            if condition == "Complete":
                status["jobsStatus"][0].update(active=0, succeeded=1)
        path = f"{TRAINJOBS.format(ns=self.namespace)}/{job}/status"
        code, body = self.request("PATCH", path, {"status": status})
        assert code == 200, body

    def add_node_pod(
        self,
        job: str,
        rank: int,
        phase: str = "Running",
        logs: list[str] | None = None,
        exit_code: int | None = None,
    ) -> str:
        """Node ``rank``'s pod as JobSet + the Job controller create it (completion index)."""
        name = f"{job}-node-0-{rank}-x7k2p"
        container: dict[str, Any] = {"name": "node", "ready": phase == "Running"}
        if exit_code is not None:
            container["state"] = {"terminated": {"exitCode": exit_code, "reason": "Error"}}
        labels = {
            "jobset.sigs.k8s.io/jobset-name": job,
            "jobset.sigs.k8s.io/replicatedjob-name": "node",
            "jobset.sigs.k8s.io/job-index": "0",
            "batch.kubernetes.io/job-completion-index": str(rank),
            "batch.kubernetes.io/job-name": f"{job}-node-0",
        }
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "labels": labels,
                "annotations": {"batch.kubernetes.io/job-completion-index": str(rank)},
            },
            "spec": {"containers": [{"name": "node", "image": "trainer"}]},
            "status": {"phase": phase, "containerStatuses": [container]},
        }
        code, body = self.request("POST", f"/api/v1/namespaces/{self.namespace}/pods", pod)
        assert code == 201, body
        if logs:
            self.cluster.call(self.cluster.emulator.append_log, self.namespace, name, logs)
        return name
