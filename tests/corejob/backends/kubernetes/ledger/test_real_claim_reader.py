"""A real API server accepts the reader pod built from a lab's values (server-side dry run,
as the restricted user with the Role ``results --from-claim`` needs); the dry run is a real
validation: a subPath escaping the claim is refused."""

from __future__ import annotations

from corejob.backends.kubernetes.ledger.claim_reader import reader_pod
from corejob.job.spec import job_pod_spec
from tests.support.kube_real import KubeNamespace
from tests.support.kube_server import USER

LAB = {
    "image": {"repository": "registry.example/lab/corejob-trainer", "tag": "0.9.1",
              "pullSecrets": ["lab-registry"]},
    "serviceAccountName": "default",
    "priorityClassName": "",
    "nodeSelector": {"pool": "cpu"},
    "tolerations": [{"key": "lab", "operator": "Exists", "effect": "NoSchedule"}],
    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "zone", "operator": "In", "values": ["a"]}]}]}}},
    "checkpoints": {"existingClaim": "lab-runs", "subPath": "team-a"},
}  # fmt: skip


def dry_run(kube: KubeNamespace, pod: dict) -> tuple[int, dict]:
    path = f"/api/v1/namespaces/{kube.name}/pods?dryRun=All"
    return kube.cluster.request("POST", path, pod, user=USER)


def test_the_reader_pod_passes_a_real_servers_validation(kube: KubeNamespace):
    pod = reader_pod(job_pod_spec(LAB, kube.name), "corejob-results-0a1b2c3d", 300)

    code, answer = dry_run(kube, pod)

    assert code == 201, answer
    assert answer["spec"]["volumes"][0]["persistentVolumeClaim"]["readOnly"] is True
    pod["spec"]["containers"][0]["volumeMounts"][0]["subPath"] = "../x"  # the chart refuses it
    code, answer = dry_run(kube, pod)
    assert code == 422 and "subPath" in answer["message"], answer
