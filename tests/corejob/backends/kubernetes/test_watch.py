"""One watch per namespace: resume after drops, relist after 410 Gone, few requests."""

from __future__ import annotations

import pytest

from corejob.backends.kubernetes.backend import KubernetesBackend
from corejob.job.state import LABEL_SWEEP, JobState, summarize
from tests.corejob.conftest import Background
from tests.support.wait import wait_until

JOB = {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "spec": {}}
JOBS = "/apis/kubeflow.org/v1/namespaces/team-a/pytorchjobs"


def create(cluster, name: str, sweep: str = "w") -> None:
    job = dict(JOB, metadata={"name": name, "labels": {LABEL_SWEEP: sweep}})
    assert cluster.operator.request("POST", JOBS, job)[0] == 201


def state_of(tracker, name: str) -> JobState | None:
    job = tracker.snapshot().get(name)
    return summarize(job).state if job else None


def watch_requests(cluster) -> list:
    return [r for r in cluster.controller_requests() if r.params.get("watch")]


def test_watch_sees_changes_with_one_stream_and_a_selector(cluster):
    create(cluster, "a")
    create(cluster, "other", sweep="x")
    with KubernetesBackend().track({LABEL_SWEEP: "w"}) as tracker:
        assert set(tracker.snapshot()) == {"a"}
        create(cluster, "b")
        cluster.operator.set_condition("a", "Succeeded")
        cluster.operator.set_condition("other", "Failed")
        assert tracker.wait_until(
            lambda jobs: set(jobs) == {"a", "b"} and summarize(jobs["a"]).state.finished, 5
        )
        assert state_of(tracker, "a") == JobState.SUCCEEDED
    assert len(watch_requests(cluster)) == 1
    assert watch_requests(cluster)[0].params["labelSelector"] == f"{LABEL_SWEEP}=w"


def test_a_dropped_watch_resumes_from_its_resource_version(cluster):
    create(cluster, "a")
    with KubernetesBackend().track({LABEL_SWEEP: "w"}) as tracker:
        assert tracker.wait_until(lambda jobs: "a" in jobs, 5)
        seen_version = tracker.resource_version
        # The connection drops and the first reconnects fail: changes happen meanwhile.
        cluster.emulator.inject_fault(
            "GET", "pytorchjobs.*watch=", 503, "apiserver restarting", times=2
        )
        cluster.call(cluster.emulator.drop_watches)
        cluster.operator.set_condition("a", "Running")
        create(cluster, "b")
        assert tracker.wait_until(
            lambda jobs: "b" in jobs and summarize(jobs["a"]).state == JobState.RUNNING, 5
        )
    resumed = [r for r in watch_requests(cluster)[1:] if r.params.get("resourceVersion")]
    assert resumed[0].params["resourceVersion"] == seen_version
    assert tracker.relists == 1  # resumed from the resourceVersion, not relisted
    assert tracker.reconnects >= 2


def test_410_gone_relists_and_keeps_tracking(cluster):
    create(cluster, "a")
    with KubernetesBackend().track({LABEL_SWEEP: "w"}) as tracker:
        assert tracker.wait_until(lambda jobs: "a" in jobs, 5)
        cluster.call(cluster.emulator.compact)
        cluster.call(cluster.emulator.drop_watches)
        cluster.operator.set_condition("a", "Succeeded")
        assert tracker.wait_until(lambda jobs: summarize(jobs["a"]).state.finished, 5)
        create(cluster, "c")
        assert tracker.wait_until(lambda jobs: "c" in jobs, 5)
    assert tracker.relists >= 2


def test_deleted_jobs_leave_the_cache(cluster):
    create(cluster, "a")
    with KubernetesBackend().track({LABEL_SWEEP: "w"}) as tracker:
        assert cluster.operator.request("DELETE", f"{JOBS}/a")[0] == 200
        assert tracker.wait_until(lambda jobs: "a" not in jobs, 5)


def test_a_forbidden_watch_degrades_to_listing(cluster):
    create(cluster, "a")
    cluster.emulator.inject_fault("GET", "pytorchjobs.*watch=", 403, "cannot watch", times=99)
    with KubernetesBackend().track({LABEL_SWEEP: "w"}, poll_s=0.2) as tracker:
        cluster.operator.set_condition("a", "Succeeded")
        assert tracker.wait_until(lambda jobs: summarize(jobs["a"]).state.finished, 5)
    assert tracker.watch_denied and tracker.relists >= 2


@pytest.mark.parametrize("status", [500, 404, 429])
def test_a_watch_that_keeps_failing_falls_back_to_listing_with_one_warning(cluster, capsys, status):
    """Before: list and get worked, every watch answered 500, and the cache never changed
    again (`submit --wait` and `sweep` hung silently)."""
    create(cluster, "a")
    cluster.emulator.inject_fault("GET", "pytorchjobs.*watch=", status, "watch broken", times=999)
    with KubernetesBackend().track({LABEL_SWEEP: "w"}, poll_s=0.2) as tracker:
        cluster.operator.set_condition("a", "Running")
        assert tracker.wait_until(lambda jobs: state_of(tracker, "a") == JobState.RUNNING, 10)
        create(cluster, "b")
        cluster.operator.set_condition("a", "Succeeded")
        assert tracker.wait_until(
            lambda jobs: "b" in jobs and summarize(jobs["a"]).state.finished, 10
        )
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"corejob: warning: watching jobs failed 3 times in a row "
                                  f"({status} ")  # fmt: skip
    assert warnings[0].endswith("listing every 0.2s instead")
    assert tracker.polling and tracker.relists >= 3
    assert len(watch_requests(cluster)) == 3  # given up after three, not hammered forever


def test_submit_wait_ends_although_every_watch_fails(cluster, corejob):
    cluster.emulator.inject_fault("GET", "pytorchjobs.*watch=", 500, "watch broken", times=999)
    waiting = Background("submit", "-m", "res_small", "-d", "synthetic_tiny", "--wait")
    (job,) = wait_until(cluster.jobs, 15, "submit --wait to create its job")
    cluster.operator.set_condition(job["metadata"]["name"], "Succeeded")
    assert waiting.join(30) == 0
