"""Sweeps: max-parallel, slot filling, retries, reruns, and kubectl seeing the same ledger."""

from __future__ import annotations

import subprocess
import time

import yaml

from corejob.backends.base import PollingTracker
from corejob.errors import ExitCode
from corejob.job.state import LABEL_SWEEP, JobState, summarize
from tests.corejob.conftest import Background, wait_for


def active(jobs: list[dict]) -> list[dict]:
    return [job for job in jobs if not summarize(job).state.finished]


def sweep_args(name: str, models: str, datasets: str, *extra: str) -> list[str]:
    return ["sweep", "--models", models, "--datasets", datasets, "--name", name,
            "--poll", "0.2", *extra]  # fmt: skip


def test_sweep_2x3_respects_max_parallel_and_fills_slots(cluster):
    sweep = Background(*sweep_args("grid", "res_small,res_small_gru",
                                   "synthetic_tiny,synthetic_mixed,synthetic_gaborium",
                                   "--max-parallel", "2"))  # fmt: skip
    finished = 0
    while finished < 6:
        running = wait_for(lambda: active(cluster.jobs(f"{LABEL_SWEEP}=grid")))
        time.sleep(0.3)  # give the controller a chance to overshoot, if it would
        jobs = cluster.jobs(f"{LABEL_SWEEP}=grid")
        assert len(active(jobs)) <= 2, "more than --max-parallel jobs at once"
        assert len(jobs) == finished + len(active(jobs))
        cluster.operator.set_condition(running[0]["metadata"]["name"], "Succeeded")
        finished += 1
        wait_for(lambda n=finished: len(cluster.jobs(f"{LABEL_SWEEP}=grid")) >= min(n + 2, 6)
                 or n == 6)  # fmt: skip

    assert sweep.join() == ExitCode.OK
    jobs = cluster.jobs(f"{LABEL_SWEEP}=grid")
    assert len(jobs) == 6 and all(summarize(j).state == JobState.SUCCEEDED for j in jobs)
    cells = {(summarize(j).model, summarize(j).dataset) for j in jobs}
    assert len(cells) == 6

    kubectl = subprocess.run(
        ["kubectl", "--kubeconfig", str(cluster.kubeconfig), "get", "pytorchjobs",
         "-l", f"{LABEL_SWEEP}=grid", "-o", "name"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert kubectl.returncode == 0, kubectl.stderr
    listed = {line.split("/")[-1] for line in kubectl.stdout.split()}
    assert listed == {j["metadata"]["name"] for j in jobs}


def fail_with_exit_code(cluster, job: str, exit_code: int) -> None:
    cluster.operator.add_pod(job, "master", 0, phase="Failed", exit_code=exit_code)
    cluster.operator.set_condition(
        job, "Failed", "PyTorchJobFailed", f"PyTorchJob {job} is failed because 1 Master failed."
    )


def test_retryable_failure_is_retried_and_permanent_is_not(cluster):
    sweep = Background(*sweep_args("retry", "res_small", "synthetic_tiny,synthetic_mixed",
                                   "--max-parallel", "2", "--retries", "1"))  # fmt: skip
    jobs = wait_for(lambda: len(cluster.jobs("corejob.dev/sweep=retry")) == 2
                    and cluster.jobs("corejob.dev/sweep=retry"))  # fmt: skip
    by_dataset = {summarize(j).dataset: j for j in jobs}
    preempted = by_dataset["synthetic_tiny"]["metadata"]
    broken = by_dataset["synthetic_mixed"]["metadata"]

    fail_with_exit_code(cluster, preempted["name"], 143)  # SIGTERM: retryable
    fail_with_exit_code(cluster, broken["name"], 2)  # configuration error: permanent

    def recreated():
        job = cluster.job(preempted["name"])
        return job if job and job["metadata"]["uid"] != preempted["uid"] else None

    wait_for(recreated)
    cluster.operator.set_condition(preempted["name"], "Succeeded")
    assert sweep.join() == ExitCode.JOB_FAILED
    assert cluster.job(broken["name"])["metadata"]["uid"] == broken["uid"]  # not retried
    posts = [r for r in cluster.controller_requests() if r.method.value == "POST"]
    assert len(posts) == 3  # two cells + one retry


def test_rerun_submits_only_missing_or_failed_cells(cluster, corejob):
    dry = corejob(*sweep_args("again", "res_small", "synthetic_tiny,synthetic_mixed", "--dry-run"))
    done, failed = [job["metadata"]["name"] for job in yaml.safe_load_all(dry.out)]
    # Earlier runs (of parts of the grid) left one cell Succeeded and one Failed (exit 1).
    first_run = Background(*sweep_args("again", "res_small", "synthetic_tiny"))
    wait_for(lambda: cluster.job(done))
    cluster.operator.set_condition(done, "Succeeded")
    assert first_run.join() == ExitCode.OK
    second_run = Background(*sweep_args("again", "res_small", "synthetic_mixed"))
    wait_for(lambda: cluster.job(failed))
    fail_with_exit_code(cluster, failed, 1)
    assert second_run.join() == ExitCode.JOB_FAILED  # permanent: not retried in that run

    rerun = Background(*sweep_args("again", "res_small", "synthetic_tiny,synthetic_mixed"))
    first_uid = cluster.job(failed)["metadata"]["uid"]
    wait_for(lambda: (job := cluster.job(failed)) and job["metadata"]["uid"] != first_uid)
    cluster.operator.set_condition(failed, "Succeeded")
    assert rerun.join() == ExitCode.OK
    creates = [r for r in cluster.controller_requests() if r.method.value == "POST"]
    assert len(creates) == 3  # done once, failed twice; the Succeeded cell was left alone


def test_a_failing_create_mid_sweep_reports_what_was_created(cluster, corejob):
    cluster.emulator.inject_fault("GET", "team-a/pytorchjobs/res-small-synthetic-mixed", 403,
                                  "quota: forbidden", times=99)  # fmt: skip
    result = corejob(*sweep_args("half", "res_small", "synthetic_tiny,synthetic_mixed",
                                 "--max-parallel", "2"))  # fmt: skip
    assert result.code == ExitCode.FORBIDDEN
    created = [job["metadata"]["name"] for job in cluster.jobs(f"{LABEL_SWEEP}=half")]
    assert len(created) == 1 and created[0].startswith("res-small-synthetic-tiny-")
    assert f"stopped by an error: this run created {created[0]};" in result.err
    assert "Rerun the same command to continue the sweep" in result.err


def test_ctrl_c_stops_submitting_and_tells_how_to_resume(cluster, corejob, monkeypatch):
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
    (created,) = [job["metadata"]["name"] for job in cluster.jobs(f"{LABEL_SWEEP}=intr")]
    assert f"interrupted: this run created {created}; those jobs keep running" in result.err
    assert "corejob cancel --sweep intr" in result.err
