"""Sweeps on the real API server: retries wait for a real (slow) deletion without holding
up the other cells, and cells refused by an exceeded quota stay queued until there is room.

The test plays the operator (pods owned by their job; one with a finalizer lingers when
deleted, like a pod in its grace period) and the cluster admin (the ResourceQuota).
"""

from __future__ import annotations

from corejob.errors import ExitCode
from corejob.job.state import LABEL_SWEEP, JobState, summarize
from tests.corejob.backends.kubernetes.test_real_errors import set_job_quota
from tests.corejob.conftest import Background
from tests.support.kube_real import KubeNamespace
from tests.support.wait import wait_until


def sweep_args(name: str, datasets: str, *extra: str) -> list[str]:
    return [
        "sweep",
        "--models",
        "res_small",
        "--datasets",
        datasets,
        "--name",
        name,
        "--poll",
        "0.2",
        "--max-parallel",
        "2",
        *extra,
    ]


def jobs_by_dataset(kube: KubeNamespace, sweep: str, count: int) -> dict[str, dict]:
    jobs = wait_until(
        lambda: (found := kube.jobs(f"{LABEL_SWEEP}={sweep}")) and len(found) == count and found,
        30,
        f"{count} jobs of sweep {sweep}",
    )
    return {summarize(job).dataset: job for job in jobs}


def preempt(kube: KubeNamespace, name: str) -> str:
    """The job failed with exit 143 (SIGTERM: retryable); its pod lingers when deleted."""
    pod = kube.add_pod(name, "master", 0, phase="Failed", exit_code=143, finalizer=True)
    kube.set_condition(name, "Failed", "PyTorchJobFailed", f"PyTorchJob {name} is failed.")
    return pod


def test_a_retry_waits_for_the_deletion_while_other_cells_go_on(kube: KubeNamespace):
    """Before: the retry blocked the whole sweep while the old job was being deleted (for
    up to 120 s, then stopped it with exit 10): no other cell was submitted meanwhile."""
    sweep = Background(
        *sweep_args(
            "slowdel", "synthetic_tiny,synthetic_mixed,synthetic_gaborium", "--retries", "1"
        )
    )
    jobs = jobs_by_dataset(kube, "slowdel", 2)
    retried, other = jobs["synthetic_tiny"]["metadata"], jobs["synthetic_mixed"]["metadata"]
    pod = preempt(kube, retried["name"])
    kube.set_condition(other["name"], "Succeeded")
    # The freed slot is filled although the retried job is still being deleted.
    third = jobs_by_dataset(kube, "slowdel", 3)["synthetic_gaborium"]["metadata"]["name"]
    assert kube.job(retried["name"])["metadata"]["uid"] == retried["uid"]
    assert kube.job(retried["name"])["metadata"].get("deletionTimestamp")
    kube.release(pod)

    def recreated() -> dict | None:
        job = kube.job(retried["name"])
        return job if job and job["metadata"]["uid"] != retried["uid"] else None

    wait_until(recreated, 60, "the retry to create the job again once the old one is gone")
    kube.set_condition(retried["name"], "Succeeded")
    kube.set_condition(third, "Succeeded")
    assert sweep.join(60) == ExitCode.OK
    assert kube.job(other["name"])["metadata"]["uid"] == other["uid"]


def test_a_deletion_past_the_timeout_fails_that_cell_only(kube: KubeNamespace, capsys):
    sweep = Background(
        *sweep_args(
            "stuckdel",
            "synthetic_tiny,synthetic_mixed",
            "--retries",
            "1",
            "--deletion-timeout",
            "1s",
        )
    )
    jobs = jobs_by_dataset(kube, "stuckdel", 2)
    stuck, other = jobs["synthetic_tiny"]["metadata"]["name"], jobs["synthetic_mixed"]
    pod = preempt(kube, stuck)
    kube.set_condition(other["metadata"]["name"], "Succeeded")
    assert sweep.join(60) == ExitCode.JOB_FAILED
    err = capsys.readouterr().err
    assert (
        f"give up {stuck} (res_small × synthetic_tiny): job {stuck} is still being "
        "deleted after 1s" in err
    )
    assert summarize(kube.job(other["metadata"]["name"])).state == JobState.SUCCEEDED
    kube.release(pod)


def test_cells_over_the_quota_stay_queued_until_there_is_room(kube: KubeNamespace, capsys):
    """Before: the first exceeded-quota 403 stopped the sweep (exit 4)."""
    set_job_quota(kube, 1)
    sweep = Background(*sweep_args("quota", "synthetic_tiny,synthetic_mixed"))
    (first,) = jobs_by_dataset(kube, "quota", 1).values()
    wait_until(
        lambda: len(kube.requests("create", "pytorchjobs")) >= 3,
        30,
        "the sweep to try the queued cell again",
    )
    assert sweep.thread.is_alive() and len(kube.jobs()) == 1
    set_job_quota(kube, 2)  # the admin makes room
    second = wait_until(
        lambda: len(kube.jobs()) == 2 and kube.jobs(),
        30,
        "the queued cell to be created once there is room",
    )
    for job in second:
        kube.set_condition(job["metadata"]["name"], "Succeeded")
    assert sweep.join(60) == ExitCode.OK
    queued = [line for line in capsys.readouterr().err.splitlines() if "  queued  " in line]
    assert len(queued) == 1, queued  # said once, not at every try
    assert "res_small × synthetic_mixed): pytorchjobs.kubeflow.org" in queued[0]
    assert "exceeded quota: jobs" in queued[0] and queued[0].endswith("when there is room")
    del first
