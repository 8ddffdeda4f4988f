"""submit / status / cancel against the real API server, where deletion takes time.

The test plays the training operator: it creates the job's pods (owned by the job, one with
a finalizer standing in for a pod in its termination grace period) and PATCHes status.
"""

from __future__ import annotations

from corejob.errors import ExitCode
from tests.corejob.conftest import Background
from tests.support.kube_real import KubeNamespace
from tests.support.wait import wait_until

SUBMIT = ("submit", "-m", "res_small", "-d", "synthetic_tiny")


def submitted_name(out: str) -> str:
    return out.split()[2]  # "created job <name> in namespace ..."


def held_by_a_terminating_pod(kube: KubeNamespace, corejob) -> tuple[str, str, str]:
    """A running job whose master pod lingers when deleted, then `corejob cancel` of it:
    (name, old uid, pod)."""
    created = corejob(*SUBMIT)
    assert created.code == 0, created.err
    name = submitted_name(created.out)
    kube.set_condition(name, "Running")
    pod = kube.add_pod(name, "master", 0, finalizer=True)
    uid = kube.job(name)["metadata"]["uid"]
    cancelled = corejob("cancel", name)
    assert cancelled.code == 0 and f"deleted job {name}" in cancelled.out
    wait_until(
        lambda: (kube.job(name) or {}).get("metadata", {}).get("deletionTimestamp"),
        30,
        f"{name} to be marked for deletion",
    )
    return name, uid, pod


def test_status_shows_a_job_being_deleted_as_deleting(kube, corejob):
    """Before: a job with a deletionTimestamp showed its last condition (or Unknown)."""
    name, _, pod = held_by_a_terminating_pod(kube, corejob)
    status = corejob("status", name)
    assert status.code == 0
    row = next(line for line in status.out.splitlines() if line.startswith(name))
    assert "Deleting" in row.split()
    assert f"{name}: being deleted since" in status.out and "it was Running" in status.out
    kube.release(pod)
    wait_until(lambda: kube.job(name) is None, 60, f"{name} to be gone")
    assert "no jobs" in corejob("status").out


def test_resubmit_while_the_old_job_is_deleted_waits_then_creates(kube, corejob):
    """Before: `job … already exists … not submitted again`, exit 0, and nothing ran."""
    name, old_uid, pod = held_by_a_terminating_pod(kube, corejob)
    again = Background(*SUBMIT)
    wait_until(
        lambda: (
            kube.requests("get", "pytorchjobs")[-1]["objectRef"].get("name") == name
            and len(kube.requests("get", "pytorchjobs")) >= 3
        ),
        30,
        "the resubmit to poll the dying job",
    )
    assert kube.job(name)["metadata"]["uid"] == old_uid  # still the old one, still dying
    kube.release(pod)
    assert again.join(60) == ExitCode.OK
    new = kube.job(name)
    assert new is not None and new["metadata"]["uid"] != old_uid
    assert not new["metadata"].get("deletionTimestamp")
    creates = kube.requests("create", "pytorchjobs")
    assert len(creates) == 2 and all(e["responseStatus"]["code"] == 201 for e in creates)


def test_resubmit_gives_up_when_the_deletion_outlasts_its_bound(kube, corejob, monkeypatch):
    name, old_uid, pod = held_by_a_terminating_pod(kube, corejob)
    monkeypatch.setenv("COREJOB_DELETION_WAIT_S", "1")
    result = corejob(*SUBMIT)
    assert result.code == ExitCode.CONFLICT
    assert f"job {name} is being deleted (since" in result.err
    assert f"job {name} is still being deleted after 1s" in result.err
    assert kube.job(name)["metadata"]["uid"] == old_uid
    kube.release(pod)
