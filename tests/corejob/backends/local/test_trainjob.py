"""The TrainJob flavour runs locally: plans carry Trainer v2's PET_* env, and a 1+1 node
TrainJob of the real trainer trains to Succeeded (DDP over gloo between two processes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from corejob.backends.local.backend import LocalBackend
from corejob.backends.local.operator_env import JobSpecError
from corejob.backends.local.replicas import master_container_port, replica_plans
from corejob.job.state import JobState, summarize
from tests.support.local_jobs import (
    chart_job,
    no_leftover_jobs,  # noqa: F401  (autouse)
)
from tests.support.wait import wait_until

PET = {"PET_NNODES", "PET_NPROC_PER_NODE", "PET_NODE_RANK", "PET_MASTER_ADDR", "PET_MASTER_PORT"}


def plans_of(job):
    return replica_plans(
        job, master_addr="127.0.0.1", master_port=29500, cpu_count=8, host_environ={}
    )


def test_trainjob_nodes_get_only_the_pet_variables():
    job = chart_job("tj", workers=2, apiFlavor="trainjob")
    assert job["kind"] == "TrainJob" and master_container_port(job) == 29500
    plans = plans_of(job)
    assert [(p.replica_id, p.rank, p.pod_name) for p in plans] == [
        ("master-0", 0, "tj-master-0"),
        ("worker-0", 1, "tj-worker-0"),
        ("worker-1", 2, "tj-worker-1"),
    ]
    worker = plans[2].env
    assert {k: worker[k] for k in PET} == {
        "PET_NNODES": "3",
        "PET_NPROC_PER_NODE": "1",
        "PET_NODE_RANK": "2",
        "PET_MASTER_ADDR": "127.0.0.1",
        "PET_MASTER_PORT": "29500",
    }
    assert not {"RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"} & set(worker)
    assert worker["COREJOB_JOB_NAME"] == "tj" and worker["OMP_NUM_THREADS"] == "2"
    # volumes and mounts come from the chart's runtime patch, args from spec.trainer
    assert {m.mount_path for m in plans[0].mounts} == {"/tmp", "/dev/shm", "/data", "/runs"}
    assert plans[0].args[:3] == ("train", "--model_config", "res_small")
    assert plans[0].command is None  # the image ENTRYPOINT


def test_torchrun_trainjob_keeps_the_process_count_for_torchrun():
    plans = plans_of(chart_job("tj", workers=1, apiFlavor="trainjob", nprocPerNode=2))
    assert plans[1].command == ("torchrun",)
    assert plans[1].env["PET_NPROC_PER_NODE"] == "2" and plans[1].env["OMP_NUM_THREADS"] == "2"


def test_a_suspended_trainjob_cannot_run_locally():
    job = chart_job("tj", apiFlavor="trainjob", runPolicy={"suspend": True})
    with pytest.raises(JobSpecError, match=r"spec\.suspend"):
        plans_of(job)


@pytest.mark.slow
def test_one_plus_one_node_trainjob_trains_to_succeeded(tmp_path: Path):
    backend = LocalBackend(tmp_path)
    trainer = {"maxEpochs": 1, "stepsPerEpoch": 4, "numWorkers": 0}
    backend.submit(chart_job("tj", workers=1, apiFlavor="trainjob", trainer=trainer))

    def finished():
        summary = summarize(backend.get("tj"))
        return summary if summary.state.finished else None

    summary = wait_until(finished, 150.0, "the TrainJob to finish", interval=0.5)
    assert summary.state is JobState.SUCCEEDED, summary.message
    assert (summary.reason, summary.kind) == ("TrainJobSucceeded", "TrainJob")
    assert backend.result("tj")["world_size"] == 2
    worker_log = "\n".join(backend.logs("tj", replica="worker-0"))
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in worker_log
