"""Job object → replica plans → local process specs, without starting anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from corejob.backends.local.operator_env import JobSpecError, expand_references
from corejob.backends.local.replicas import (
    mount_table,
    process_spec,
    replica_plans,
    rewrite_path,
    total_processes,
)
from tests.support.local_jobs import chart_job


def plans_of(job, **overrides):
    options = {"master_addr": "127.0.0.1", "master_port": 4321, "cpu_count": 8, "host_environ": {}}
    options.update(overrides)
    return replica_plans(job, **options)


def test_operator_env_for_master_and_workers():
    job = chart_job("tiny", workers=2)
    plans = plans_of(job)
    assert [(p.replica_id, p.rank, p.pod_name) for p in plans] == [
        ("master-0", 0, "tiny-master-0"),
        ("worker-0", 1, "tiny-worker-0"),
        ("worker-1", 2, "tiny-worker-1"),
    ]
    worker = plans[2].env
    assert worker["MASTER_ADDR"] == worker["PET_MASTER_ADDR"] == "127.0.0.1"
    assert worker["MASTER_PORT"] == worker["PET_MASTER_PORT"] == "4321"
    assert (worker["WORLD_SIZE"], worker["RANK"], worker["PET_NODE_RANK"]) == ("3", "2", "2")
    assert (worker["PET_NNODES"], worker["PET_NPROC_PER_NODE"]) == ("3", "1")
    assert worker["PYTHONUNBUFFERED"] == "1"
    # the chart asks for 4 threads per pod; locally 3 processes share 8 cores
    assert worker["OMP_NUM_THREADS"] == "2"
    assert worker["COREJOB_JOB_NAME"] == "tiny"


def test_nproc_per_node_multiplies_world_size_and_divides_threads():
    job = chart_job("tiny", workers=1)
    job["spec"]["nprocPerNode"] = "2"
    plans = plans_of(job)
    assert plans[1].env["WORLD_SIZE"] == "4"
    assert plans[1].env["PET_NPROC_PER_NODE"] == "2"
    assert plans[1].env["OMP_NUM_THREADS"] == "2"
    assert total_processes(job) == 4


def test_container_master_addr_is_the_master_pod_name():
    plans = plans_of(chart_job("tiny"), master_addr="tiny-master-0", master_port=23456)
    assert plans[1].env["MASTER_ADDR"] == "tiny-master-0"


def test_secret_env_comes_from_the_shell_or_fails_in_one_line():
    job = chart_job("tiny")
    container = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
    container["env"].append(
        {"name": "WANDB_API_KEY", "valueFrom": {"secretKeyRef": {"name": "wandb", "key": "k"}}}
    )
    assert (
        plans_of(job, host_environ={"WANDB_API_KEY": "s3cret"})[0].env["WANDB_API_KEY"] == "s3cret"
    )
    with pytest.raises(JobSpecError, match="export WANDB_API_KEY"):
        plans_of(job)
    container["env"][-1]["valueFrom"]["secretKeyRef"]["optional"] = True
    assert "WANDB_API_KEY" not in plans_of(job)[0].env


def test_field_refs_and_references_are_resolved_like_the_kubelet():
    job = chart_job("tiny")
    container = job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]
    container["env"] += [
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {
            "name": "KIND",
            "valueFrom": {
                "fieldRef": {"fieldPath": "metadata.labels['training.kubeflow.org/replica-type']"}
            },
        },
        {"name": "GREETING", "value": "$(POD) is a $(KIND), $$(POD) stays"},
    ]
    container["args"].append("--tag=$(POD)")
    worker = plans_of(job)[1]
    assert worker.env["GREETING"] == "tiny-worker-0 is a worker, $(POD) stays"
    assert worker.args[-1] == "--tag=tiny-worker-0"
    assert expand_references("$(UNKNOWN)", {}) == "$(UNKNOWN)"


def test_volumes_map_to_job_directories_and_paths_are_rewritten(tmp_path: Path):
    job = chart_job("tiny")
    master = plans_of(job)[0]
    table = mount_table(master, tmp_path / "tiny", tmp_path / "_claims")
    assert table["/runs"] == tmp_path / "tiny" / "volumes" / "runs"
    assert table["/data"] == tmp_path / "tiny" / "volumes" / "data"
    assert "/dev/shm" not in table  # the host's own shared memory is used
    spec = process_spec(master, table, "/usr/bin/python3", {"PATH": "/bin"})
    assert spec.argv[:3] == ("/usr/bin/python3", "-m", "trainer")
    assert spec.argv[3] == "train"
    run_dir = spec.argv[spec.argv.index("--run_dir") + 1]
    assert run_dir == str(tmp_path / "tiny" / "volumes" / "runs" / "tiny")
    assert spec.env["HOME"] == str(tmp_path / "tiny" / "volumes" / "tmp")
    assert spec.env["PATH"] == "/bin"
    assert rewrite_path("--data_root=/data/x", table) == f"--data_root={table['/data']}/x"
    assert rewrite_path("/database", table) == "/database"


def test_a_host_interpreter_under_a_mount_path_is_not_rewritten(tmp_path: Path):
    # A checkout under /tmp (CI clones) has its venv's python under the pod's /tmp mount.
    master = plans_of(chart_job("tiny"))[0]
    table = mount_table(master, tmp_path / "tiny", tmp_path / "_claims")
    spec = process_spec(master, table, "/tmp/checkout/.venv/bin/python", {})
    assert spec.argv[0] == "/tmp/checkout/.venv/bin/python"
    assert spec.env["HOME"] == str(tmp_path / "tiny" / "volumes" / "tmp")


def test_persistent_claims_are_shared_between_jobs(tmp_path: Path):
    job = chart_job("tiny", checkpoints={"existingClaim": "ckpts"})
    master = plans_of(job)[0]
    table = mount_table(master, tmp_path / "tiny", tmp_path / "_claims")
    assert table["/runs"] == tmp_path / "_claims" / "ckpts"


def test_a_command_replaces_the_entrypoint():
    job = chart_job("tiny")
    container = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
    container["command"] = ["torchrun", "--nproc_per_node", "$(PET_NPROC_PER_NODE)"]
    spec = process_spec(plans_of(job)[0], {}, "/usr/bin/python3", {})
    assert spec.argv[:3] == ("torchrun", "--nproc_per_node", "1")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s.pop("Master"), "a Master replica is required"),
        (
            lambda s: s["Worker"]["template"]["spec"]["containers"][0].update(name="x"),
            "no container named 'pytorch'",
        ),
        (lambda s: s.update(Chief=s["Master"]), "unsupported replica type 'Chief'"),
    ],
)
def test_jobs_the_operator_would_reject_fail_in_one_line(mutate, message):
    job = chart_job("tiny")
    mutate(job["spec"]["pytorchReplicaSpecs"])
    with pytest.raises(JobSpecError, match=message):
        plans_of(job)
