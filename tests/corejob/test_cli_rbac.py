"""The project's `corejob-controller` Role is exactly what the CLI needs, on a real server.

A user holding only that Role (manifests/base/rbac-controller.yaml) submits, sweeps, reads
status (with pending pods and a Kueue-held job explained), logs, results (also through a
claim reader pod) and cancels; the API
server's audit log then says which (group, resource, verb) the CLI used. Every use was
allowed, and every grant was used: a verb the CLI never uses is one too many.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from corejob.backends.kubernetes.ledger.claim_reader import READER_SELECTOR
from corejob.errors import ExitCode
from tests.corejob.conftest import Background
from tests.support.kube_real import CONTROLLER_ROLE, KubeNamespace
from tests.support.wait import wait_until
from trainer.configs import CONFIGS_DIR


def role_grants() -> set[tuple[str, str, str]]:
    role = next(d for d in yaml.safe_load_all(CONTROLLER_ROLE.read_text()) if d["kind"] == "Role")
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def used(kube: KubeNamespace) -> dict[tuple[str, str, str], set[int]]:
    """(group, resource[/subresource], verb) → the status codes the server answered."""
    found: dict[tuple[str, str, str], set[int]] = {}
    for event in kube.requests():
        ref = event["objectRef"]
        resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        key = (ref.get("apiGroup", ""), resource, event["verb"])
        found.setdefault(key, set()).add(event["responseStatus"]["code"])
    return found


def test_the_controller_role_is_what_the_cli_uses(kube: KubeNamespace, corejob):
    submitted = corejob("submit", "-m", "res_small", "-d", "synthetic_tiny")
    assert submitted.code == 0, submitted.err
    name = submitted.out.split()[2]
    kube.add_pod(name, "master", 0, phase="Pending")
    kube.add_event(
        f"{name}-master-0",
        "FailedScheduling",
        "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
    )
    status = corejob("status")
    assert status.code == 0 and "enough free nvidia.com/gpu" in status.out
    queued = corejob("submit", "-m", "res_small", "-d", "synthetic_mixed", "--set", "queueName=q")
    assert queued.code == 0, queued.err
    assert "held by Kueue" in corejob("status", queued.out.split()[2]).out
    corejob("logs", name)  # no kubelet here: the server answers, but has no log to give
    own = Path("my_model.yaml")  # the test runs in its tmp_path
    own.write_text((CONFIGS_DIR / "models" / "res_small.yaml").read_text())
    shipped = corejob("submit", "-m", str(own.absolute()), "-d", "synthetic_tiny")
    assert shipped.code == 0, shipped.err  # the job, then its ConfigMap

    sweep = Background(
        "sweep",
        "--models",
        "res_small",
        "--datasets",
        "synthetic_gaborium",
        "--name",
        "rbac",
        "--poll",
        "0.2",
    )
    (job,) = wait_until(lambda: kube.jobs("corejob.dev/sweep=rbac"), 30, "the sweep's job")
    kube.set_condition(job["metadata"]["name"], "Succeeded")
    assert sweep.join(60) == ExitCode.OK
    assert corejob("results").code == 0  # the results ledger: listed, never read by name
    reader = Background("results", "--from-claim", "--set", "checkpoints.existingClaim=runs")
    pods = f"/api/v1/namespaces/{kube.name}/pods?labelSelector={READER_SELECTOR}"
    (pod,) = wait_until(lambda: kube.cluster.ok("GET", pods)["items"], 30, "the reader pod")
    kube.set_pod_phase(pod["metadata"]["name"], "Failed")  # no kubelet: it cannot run here
    assert reader.join(60) == ExitCode.JOB_FAILED  # created, polled, deleted
    cancelled = corejob("cancel", name)
    assert cancelled.code == 0, cancelled.err

    requests = used(kube)
    denied = {key for key, codes in requests.items() if 403 in codes}
    assert not denied, f"the Role lacks {denied}"
    # Trainer v2's grants are used by TrainJobs: test_real_trainjob.py checks those.
    trainer = {key for key in role_grants() | set(requests) if key[0] == "trainer.kubeflow.org"}
    assert set(requests) - trainer == role_grants() - trainer
