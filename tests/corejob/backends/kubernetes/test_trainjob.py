"""TrainJobs (Kubeflow Trainer v2) on the emulated cluster, with the Trainer's and JobSet's
part played over HTTP: flavour auto-selection from discovery, submit/status/logs/results/
explain/cancel, and a sweep of TrainJobs."""

from __future__ import annotations

import json

from corejob.errors import ExitCode
from corejob.job.state import LABEL_SWEEP
from tests.corejob.conftest import Background
from tests.support.trainer_v2 import TRAINJOB_RESOURCES, TrainerController, uninstall
from tests.support.wait import wait_until

PYTORCHJOBS = "kubeflow.org/v1/pytorchjobs"
RESULT = {"model": "res_small", "dataset": "synthetic_tiny", "best_val_bps_overall": 0.5123,
          "final_val_bps_overall": 0.5, "val_bps": {"s1": 0.51}, "epochs": 1,
          "global_step": 4, "world_size": 2, "wall_time_s": 3.0}  # fmt: skip


def submit(corejob, *extra: str) -> str:
    result = corejob("submit", "-m", "res_small", "-d", "synthetic_tiny", "--workers", "1", *extra)
    assert result.code == 0, result.err
    return result.out.split()[2]


def test_a_cluster_with_only_trainer_v2_gets_a_trainjob(cluster, corejob):
    uninstall(cluster, PYTORCHJOBS)
    name = submit(corejob)
    job = TrainerController(cluster).trainjob(name)
    assert job is not None and job["spec"]["trainer"]["numNodes"] == 2
    assert job["spec"]["runtimeRef"]["name"] == "torch-distributed"
    row = corejob("status").out.splitlines()[1]
    assert row.split()[:5] == [name, "res_small", "synthetic_tiny", "Created", "TrainJob"]


def test_with_both_installed_the_default_flavour_wins_unless_asked(cluster, corejob):
    default = submit(corejob)
    assert cluster.job(default) is not None  # a PyTorchJob
    asked = submit(corejob, "--set", "apiFlavor=trainjob")
    assert TrainerController(cluster).trainjob(asked) is not None and cluster.job(asked) is None


def test_without_either_crd_the_error_names_both(cluster, corejob):
    uninstall(cluster, PYTORCHJOBS, *TRAINJOB_RESOURCES)
    result = corejob("submit", "-m", "res_small", "-d", "synthetic_tiny")
    assert result.code == ExitCode.NOT_INSTALLED
    assert "neither PyTorchJob (kubeflow.org/v1) nor TrainJob (trainer.kubeflow.org/v1alpha1)" in (
        result.err
    )
    assert "training-operator.git" in result.err and "kubeflow/trainer.git" in result.err
    assert corejob("status").code == ExitCode.NOT_INSTALLED


def test_status_logs_results_and_cancel_of_a_trainjob(cluster, corejob):
    uninstall(cluster, PYTORCHJOBS)
    name = submit(corejob)
    trainer = TrainerController(cluster)
    assert any("Kubeflow Trainer has created no pods yet" in line
               for line in corejob("status", name).out.splitlines())  # fmt: skip
    trainer.set_status(name, active=1)
    trainer.add_node_pod(name, 0, logs=["rank 0 says hi", "COREJOB_RESULT " + json.dumps(RESULT)])
    trainer.add_node_pod(name, 1, logs=["rank 1 says hi"])

    header, row = corejob("status").out.splitlines()[:2]
    assert header.split()[:5] == ["JOB", "MODEL", "DATASET", "STATE", "KIND"]
    assert row.split()[:5] == [name, "res_small", "synthetic_tiny", "Running", "TrainJob"]
    (record,) = json.loads(corejob("status", name, "-o", "json").out)
    assert (record["kind"], record["state"], record["replicas"]["node"]["active"]) == (
        "TrainJob",
        "Running",
        1,
    )
    assert corejob("logs", name).out.splitlines()[0] == "rank 0 says hi"
    assert corejob("logs", name, "--replica", "worker-0").out.splitlines() == ["rank 1 says hi"]
    every = corejob("logs", name, "--all").out
    assert (
        "[rank 0 master-0] rank 0 says hi" in every and "[rank 1 worker-0] rank 1 says hi" in every
    )

    trainer.set_status(name, "Complete")
    status = corejob("status", name).out
    assert "Succeeded" in status and "TrainJob" in status
    results = corejob("results")
    assert results.code == 0 and "0.5123" in results.out, results.err

    assert corejob("cancel", name).code == 0
    wait_until(lambda: trainer.trainjob(name) is None, 10, "the TrainJob to be deleted")


def test_a_failed_trainjob_reports_the_trainers_reason(cluster, corejob):
    name = submit(corejob, "--set", "apiFlavor=trainjob")
    trainer = TrainerController(cluster)
    trainer.add_node_pod(name, 0, phase="Failed", exit_code=2)
    trainer.set_status(name, "Failed", reason="DeadlineExceeded")
    result = corejob("status", name)
    assert "Failed" in result.out and "DeadlineExceeded" in result.out, result.out


def test_a_sweep_of_trainjobs_runs_to_completion(cluster):
    uninstall(cluster, PYTORCHJOBS)
    trainer = TrainerController(cluster)
    datasets = "synthetic_tiny,synthetic_mixed"
    sweep = Background("sweep", "--models", "res_small", "--datasets", datasets,
                       "--name", "tj", "--poll", "0.2")  # fmt: skip
    listing = "/apis/trainer.kubeflow.org/v1alpha1/namespaces/team-a/trainjobs"

    def sweep_jobs() -> list[dict]:
        _, body = trainer.request("GET", f"{listing}?labelSelector={LABEL_SWEEP}=tj")
        return body["items"]

    jobs = wait_until(lambda: len(sweep_jobs()) == 2 and sweep_jobs(), 20, "two TrainJobs")
    for job in jobs:
        trainer.set_status(job["metadata"]["name"], "Complete")
    assert sweep.join() == ExitCode.OK


def test_a_trainjob_with_its_own_runtime_creates_owns_and_deletes_it(cluster, corejob):
    own_runtime = ("--set", "apiFlavor=trainjob", "--set", "trainJob.runtime.create=true")
    name = submit(corejob, *own_runtime)
    trainer = TrainerController(cluster)
    path = f"/apis/trainer.kubeflow.org/v1alpha1/namespaces/team-a/trainingruntimes/{name}"
    code, runtime = trainer.request("GET", path)
    assert code == 200, runtime
    assert runtime["spec"]["mlPolicy"] == {"numNodes": 2, "torch": {}}
    (owner,) = runtime["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"]) == ("TrainJob", name)
    assert owner["uid"] == trainer.trainjob(name)["metadata"]["uid"]
    creates = [r.resource.plural for r in cluster.controller_requests() if r.method.value == "POST"]
    assert creates == ["trainingruntimes", "trainjobs"]  # the runtime first: the webhook wants it

    again = corejob("submit", "-m", "res_small", "-d", "synthetic_tiny", "--workers", "1",
                    *own_runtime)  # fmt: skip
    assert again.code == 0 and f"job {name} already exists" in again.out  # same config: found
    assert corejob("cancel", name).code == 0
    assert trainer.request("GET", path)[0] == 404


def test_a_role_without_trainjobs_still_reads_its_pytorchjobs(cluster, corejob):
    """A namespace set up before TrainJobs: the Role grants pytorchjobs only."""
    name = submit(corejob)
    trainjobs = r"/apis/trainer\.kubeflow\.org/v1alpha1/namespaces/team-a/trainjobs"
    denial = 'trainjobs.trainer.kubeflow.org is forbidden: User "alice" cannot list resource'
    cluster.emulator.inject_fault("GET", trainjobs, 403, denial, times=99)
    status = corejob("status")
    assert status.code == 0, status.err
    assert status.out.splitlines()[1].split()[0] == name
    assert corejob("status", name).code == 0 and corejob("cancel", name).code == 0
