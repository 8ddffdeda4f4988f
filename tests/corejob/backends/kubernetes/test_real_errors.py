"""What the real API server refuses, and what corejob tells the user about it.

A 404 for the namespace is not a missing job; the four kinds of 403 (RBAC, exceeded
quota, namespace being deleted, admission) each get the server's own message first and
their own advice.
"""

from __future__ import annotations

from corejob.errors import ExitCode
from tests.support.kube_real import KubeNamespace
from tests.support.wait import wait_until

SUBMIT = ("submit", "-m", "res_small", "-d", "synthetic_tiny")


def set_job_quota(kube: KubeNamespace, count: int) -> None:
    """A ResourceQuota of ``count`` PyTorchJobs, in force once its controller has synced it
    (admission refuses everything while a quota's status is unknown)."""
    path = f"/api/v1/namespaces/{kube.name}/resourcequotas"
    hard = {"count/pytorchjobs.kubeflow.org": str(count)}
    status, _ = kube.cluster.request("GET", f"{path}/jobs")
    if status == 404:
        kube.cluster.ok("POST", path, {"metadata": {"name": "jobs"}, "spec": {"hard": hard}})
    else:
        kube.cluster.ok(
            "PATCH",
            f"{path}/jobs",
            {"spec": {"hard": hard}},
            content_type="application/merge-patch+json",
        )
    wait_until(
        lambda: (kube.cluster.ok("GET", f"{path}/jobs").get("status") or {}).get("hard") == hard,
        60,
        f"quota {hard} to be in force",
    )


def test_submit_to_a_missing_namespace_names_the_namespace(kube, corejob, monkeypatch):
    """Before: `pytorchjobs.kubeflow.org/<job> not found in namespace 'nope'` (the job)."""
    monkeypatch.setenv("KUBECONFIG", str(kube.admin_kubeconfig))
    result = corejob(*SUBMIT, "-n", "nope")
    assert result.code == ExitCode.NOT_FOUND
    error = result.err.splitlines()[-1]
    assert error.startswith("corejob: error: namespaces \"nope\" not found: namespace 'nope'")
    assert "does not exist" in error and "pytorchjobs" not in error


def test_rbac_403_gives_the_servers_message_then_the_role_advice(kube, corejob):
    result = corejob(*SUBMIT, "-n", "default")  # the user holds no Role there
    assert result.code == ExitCode.FORBIDDEN
    error = result.err.splitlines()[-1]
    assert error.startswith('corejob: error: pytorchjobs.kubeflow.org "res-small-synthetic-tiny-')
    assert 'is forbidden: User "corejob-user" cannot get resource "pytorchjobs"' in error
    assert "ask a cluster admin for a Role granting 'get' on 'pytorchjobs.kubeflow.org'" in error


def test_exceeded_quota_is_not_called_rbac(kube, corejob):
    """Before: `forbidden: you may not 'create' … ask a cluster admin for a Role` (exit 4)."""
    set_job_quota(kube, 1)
    assert corejob(*SUBMIT).code == 0
    result = corejob("submit", "-m", "res_small", "-d", "synthetic_mixed")
    assert result.code == ExitCode.FORBIDDEN
    error = result.err.splitlines()[-1]
    assert error.startswith('corejob: error: pytorchjobs.kubeflow.org "res-small-synthetic-mixed')
    assert "is forbidden: exceeded quota: jobs" in error
    assert f"kubectl describe resourcequota -n {kube.name}" in error
    assert "Role" not in error


def test_a_namespace_being_deleted_is_said_so(kube, corejob, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(kube.admin_kubeconfig))  # its RoleBindings go too
    assert corejob(*SUBMIT).code == 0
    (job,) = kube.jobs()
    pod = kube.add_pod(job["metadata"]["name"], finalizer=True)  # keeps it Terminating
    kube.cluster.ok("DELETE", f"/api/v1/namespaces/{kube.name}")
    result = corejob("submit", "-m", "res_small", "-d", "synthetic_mixed")
    assert result.code == ExitCode.FORBIDDEN
    error = result.err.splitlines()[-1]
    assert "because it is being terminated" in error
    assert f"namespace {kube.name!r} is being deleted; submit to another namespace" in error
    assert "Role" not in error
    kube.release(pod)
