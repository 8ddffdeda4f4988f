"""Sweeps: max-parallel, slot filling, retries, reruns, and kubectl seeing the same ledger.

On the real API server (``kube``: the test plays the training operator) except where a
fault must be injected (the emulator, ``cluster``).
"""

from __future__ import annotations

import yaml

from corejob.backends.base import PollingTracker
from corejob.errors import ExitCode
from corejob.job.state import LABEL_SWEEP, JobState, summarize
from tests.corejob.conftest import Background
from tests.support.kube_server import USER
from tests.support.wait import wait_until


def active(jobs: list[dict]) -> list[dict]:
    return [job for job in jobs if not summarize(job).state.finished]


def sweep_args(name: str, models: str, datasets: str, *extra: str) -> list[str]:
    return ["sweep", "--models", models, "--datasets", datasets, "--name", name,
            "--poll", "0.2", *extra]  # fmt: skip


def most_active_at_once(kube, sweep: str) -> int:
    """The peak number of the sweep's jobs created and not yet Succeeded, over the whole run.

    Replays the API server's audit log, which holds the controller's creates and the
    operator's status patches in the order the server handled them: an overshoot shows up
    whenever it happened, not only if the test happened to look at that moment.
    """
    active: set[str] = set()
    peak = 0
    for event in kube.cluster.audit():
        ref = event.get("objectRef") or {}
        if ref.get("namespace") != kube.name or ref.get("resource") != "pytorchjobs":
            continue
        body = event.get("requestObject") or {}
        if event["verb"] == "create" and event["user"]["username"] == USER:
            if body["metadata"]["labels"].get(LABEL_SWEEP) == sweep:
                active.add(body["metadata"]["name"])
        elif event["verb"] == "patch" and ref.get("subresource") == "status":
            newest = body["status"]["conditions"][-1]
            active -= {ref["name"]} if newest["type"] == "Succeeded" else set()
        peak = max(peak, len(active))
    return peak


def test_sweep_2x3_respects_max_parallel_and_fills_slots(kube):
    sweep = Background(*sweep_args("grid", "res_small,res_small_gru",
                                   "synthetic_tiny,synthetic_mixed,synthetic_gaborium",
                                   "--max-parallel", "2"))  # fmt: skip

    def observe(finished: int) -> list[dict]:
        """The sweep's jobs now, checked against --max-parallel at every look."""
        jobs = kube.jobs(f"{LABEL_SWEEP}=grid")
        assert len(active(jobs)) <= 2, "more than --max-parallel jobs at once"
        assert len(jobs) == finished + len(active(jobs))
        return jobs

    for finished in range(6):
        running = wait_until(
            lambda n=finished: active(observe(n)), 15, f"an active grid job ({finished} finished)"
        )
        kube.set_condition(running[0]["metadata"]["name"], "Succeeded")
        wait_until(
            lambda n=finished + 1: len(observe(n)) >= min(n + 2, 6),
            15,
            f"the sweep to fill the slot freed by finished job {finished + 1}",
        )

    assert sweep.join() == ExitCode.OK
    jobs = kube.jobs(f"{LABEL_SWEEP}=grid")
    assert len(jobs) == 6 and all(summarize(j).state == JobState.SUCCEEDED for j in jobs)
    cells = {(summarize(j).model, summarize(j).dataset) for j in jobs}
    assert len(cells) == 6
    assert most_active_at_once(kube, "grid") == 2  # never more, and both slots were used

    kubectl = kube.cluster.kubectl("get", "pytorchjobs", "-l", f"{LABEL_SWEEP}=grid", "-o",
                                   "name", user=USER, namespace=kube.name)  # fmt: skip
    listed = {line.split("/")[-1] for line in kubectl.stdout.split()}
    assert listed == {j["metadata"]["name"] for j in jobs}


def fail_with_exit_code(kube, job: str, exit_code: int) -> None:
    kube.add_pod(job, "master", 0, phase="Failed", exit_code=exit_code)
    kube.set_condition(
        job, "Failed", "PyTorchJobFailed", f"PyTorchJob {job} is failed because 1 Master failed."
    )


def test_retryable_failure_is_retried_and_permanent_is_not(kube):
    sweep = Background(*sweep_args("retry", "res_small", "synthetic_tiny,synthetic_mixed",
                                   "--max-parallel", "2", "--retries", "1"))  # fmt: skip

    def both_created() -> list[dict] | None:
        jobs = kube.jobs("corejob.dev/sweep=retry")
        return jobs if len(jobs) == 2 else None

    jobs = wait_until(both_created, 15, "sweep 'retry' to create both of its jobs")
    by_dataset = {summarize(j).dataset: j for j in jobs}
    preempted = by_dataset["synthetic_tiny"]["metadata"]
    broken = by_dataset["synthetic_mixed"]["metadata"]

    fail_with_exit_code(kube, preempted["name"], 143)  # SIGTERM: retryable
    fail_with_exit_code(kube, broken["name"], 2)  # configuration error: permanent

    def recreated():
        job = kube.job(preempted["name"])
        return job if job and job["metadata"]["uid"] != preempted["uid"] else None

    wait_until(recreated, 30, f"the sweep to retry {preempted['name']} (a new uid)")
    kube.set_condition(preempted["name"], "Succeeded")
    assert sweep.join() == ExitCode.JOB_FAILED
    assert kube.job(broken["name"])["metadata"]["uid"] == broken["uid"]  # not retried
    assert len(kube.requests("create", "pytorchjobs")) == 3  # two cells + one retry


def test_rerun_submits_only_missing_or_failed_cells(kube, corejob):
    dry = corejob(*sweep_args("again", "res_small", "synthetic_tiny,synthetic_mixed", "--dry-run"))
    done, failed = [job["metadata"]["name"] for job in yaml.safe_load_all(dry.out)]
    # Earlier runs (of parts of the grid) left one cell Succeeded and one Failed (exit 1).
    first_run = Background(*sweep_args("again", "res_small", "synthetic_tiny"))
    wait_until(lambda: kube.job(done), 15, f"the first run to create {done}")
    kube.set_condition(done, "Succeeded")
    assert first_run.join() == ExitCode.OK
    second_run = Background(*sweep_args("again", "res_small", "synthetic_mixed"))
    wait_until(lambda: kube.job(failed), 15, f"the second run to create {failed}")
    fail_with_exit_code(kube, failed, 1)
    assert second_run.join() == ExitCode.JOB_FAILED  # permanent: not retried in that run

    rerun = Background(*sweep_args("again", "res_small", "synthetic_tiny,synthetic_mixed"))
    first_uid = kube.job(failed)["metadata"]["uid"]
    wait_until(
        lambda: (job := kube.job(failed)) and job["metadata"]["uid"] != first_uid,
        30,
        f"the rerun to resubmit {failed} (a new uid)",
    )
    kube.set_condition(failed, "Succeeded")
    assert rerun.join() == ExitCode.OK
    creates = kube.requests("create", "pytorchjobs")
    assert len(creates) == 3  # done once, failed twice; the Succeeded cell was left alone


def test_a_failing_create_mid_sweep_reports_what_was_created(cluster, corejob):
    cluster.emulator.inject_fault("GET", "team-a/pytorchjobs/res-small-synthetic-mixed", 403,
                                  'User "alice" cannot get resource "pytorchjobs"',
                                  times=99)  # fmt: skip
    result = corejob(*sweep_args("half", "res_small", "synthetic_tiny,synthetic_mixed",
                                 "--max-parallel", "2"))  # fmt: skip
    assert result.code == ExitCode.FORBIDDEN
    created = [job["metadata"]["name"] for job in cluster.jobs(f"{LABEL_SWEEP}=half")]
    assert len(created) == 1 and created[0].startswith("res-small-synthetic-tiny-")
    assert f"stopped by an error: this run created {created[0]};" in result.err
    assert "Rerun the same command to continue the sweep" in result.err


def test_ctrl_c_stops_submitting_and_tells_how_to_resume(kube, corejob, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(PollingTracker, "wait_for_change", interrupt)
    monkeypatch.setattr(  # the polling tracker, whose wait the test interrupts
        "corejob.backends.kubernetes.backend.KubernetesBackend.track",
        lambda self, selector, poll_s=2.0: PollingTracker(self, selector, poll_s),
    )
    result = corejob(*sweep_args("intr", "res_small", "synthetic_tiny,synthetic_mixed",
                                 "--max-parallel", "1"))  # fmt: skip
    assert result.code == ExitCode.INTERRUPTED
    (created,) = [job["metadata"]["name"] for job in kube.jobs(f"{LABEL_SWEEP}=intr")]
    assert f"interrupted: this run created {created}; those jobs keep running" in result.err
    assert "corejob cancel --sweep intr" in result.err
