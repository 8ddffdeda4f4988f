"""The container runner's engine command, built without an engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from corejob.backends.container.runner import _security, _shm_size, run_command, size_option
from corejob.backends.local.replicas import mount_table, replica_plans
from tests.support.local_jobs import chart_job


def test_worker_container_command(tmp_path: Path):
    job = chart_job("tiny")
    worker = replica_plans(
        job, master_addr="tiny-master-0", master_port=23456, cpu_count=2, host_environ={}
    )[1]
    mounts = mount_table(worker, tmp_path / "tiny", tmp_path / "_claims")
    argv = run_command(
        worker,
        engine="podman",
        network="corejob-tiny",
        env_file=tmp_path / "worker-0.env",
        mounts=mounts,
        security={"runAsUser": 1000, "runAsGroup": 1000, "readOnlyRootFilesystem": True},
        shm_size="4g",
    )
    text = " ".join(argv)
    assert argv[:6] == ["podman", "run", "--rm", "--name", "tiny-worker-0", "--hostname"]
    assert "--network corejob-tiny" in text and "--user 1000:1000" in text
    assert "--read-only" in argv and "--shm-size 4g" in text
    assert f"--volume {tmp_path}/tiny/volumes/runs:/runs" in text
    assert "/dev/shm" not in text  # the memory emptyDir is the engine's shm
    image_at = argv.index("localhost/corejob-trainer:test")
    assert argv[image_at + 1 :] == list(worker.args)  # the image's ENTRYPOINT runs them
    assert "MASTER_ADDR" not in text  # env travels in the env file, not on the command line


def test_a_command_overrides_the_entrypoint(tmp_path: Path):
    job = chart_job("tiny")
    container = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
    container["command"] = ["torchrun", "--nproc_per_node=2"]
    master = replica_plans(job, master_addr="m", master_port=1, cpu_count=2, host_environ={})[0]
    argv = run_command(
        master,
        engine="docker",
        network="n",
        env_file=tmp_path / "e",
        mounts=mount_table(master, tmp_path, tmp_path),
        security={},
        shm_size=None,
    )
    image_at = argv.index("localhost/corejob-trainer:test")
    assert argv[image_at - 2 : image_at] == ["--entrypoint", "torchrun"]
    assert argv[image_at + 1] == "--nproc_per_node=2"


def test_kubernetes_quantities_become_engine_sizes():
    assert (size_option("4Gi"), size_option("512Mi"), size_option("1000")) == ("4g", "512m", "1000")


@pytest.mark.parametrize("flavor", ["pytorchjob", "trainjob"])
def test_a_shipped_config_file_is_mounted_read_only(tmp_path: Path, flavor: str):
    """The ConfigMap copy in the job's directory, where the chart mounts the ConfigMap
    (a TrainJob's mount comes from its runtime patch)."""
    job = chart_job("own", workers=0, model="my_model.yaml", configFiles={"my_model.yaml": "a: 1"},
                    apiFlavor=flavor)  # fmt: skip
    (master,) = replica_plans(job, master_addr="own-master-0", master_port=23456, cpu_count=2,
                              host_environ={})  # fmt: skip
    argv = run_command(
        master,
        engine="podman",
        network="corejob-own",
        env_file=tmp_path / "master-0.env",
        mounts=mount_table(master, tmp_path / "own", tmp_path / "_claims"),
        security={},
        shm_size=None,
    )
    text = " ".join(argv)
    assert f"--volume {tmp_path}/own/configmaps/own-configs:/etc/corejob/configs:ro" in text
    assert argv[argv.index("--model_config") + 1] == "/etc/corejob/configs/my_model.yaml"


def test_a_trainjob_node_container_gets_the_patched_security_and_shm(tmp_path: Path):
    """A TrainJob's security context and /dev/shm live in its runtime patch, not in a
    replica spec: the runner reads them through the same Master/Worker view."""
    job = chart_job("tj", workers=1, apiFlavor="trainjob", shm={"sizeLimit": "2Gi"})
    worker = replica_plans(
        job, master_addr="tj-master-0", master_port=29500, cpu_count=2, host_environ={}
    )[1]
    security = _security(job, worker)
    assert (security["runAsUser"], security["readOnlyRootFilesystem"]) == (1000, True)
    assert security["fsGroup"] == 1000  # the pod-level part of the patch
    assert _shm_size(job, worker) == "2g"
    assert worker.env["PET_MASTER_ADDR"] == "tj-master-0" and worker.env["PET_NODE_RANK"] == "1"
