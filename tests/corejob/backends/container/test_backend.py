"""The container backend: 1 Master + 1 Worker as containers of the built trainer image."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from corejob.backends.container.backend import ContainerBackend
from corejob.backends.container.runner import network_name
from corejob.backends.local.store import process_alive
from corejob.job.state import JobState, summarize
from tests.support.local_jobs import chart_job
from tests.support.podman import TrainerImage, trainer_image  # noqa: F401
from tests.support.wait import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.container]


def test_master_and_worker_containers_train_together(trainer_image: TrainerImage, tmp_path: Path):  # noqa: F811
    repository, tag = trainer_image.tag.rsplit(":", 1)
    job = chart_job(
        "ctiny",
        image={"repository": repository, "tag": tag},
        trainer={"maxEpochs": 2, "stepsPerEpoch": 8, "numWorkers": 0},
    )
    backend = ContainerBackend(tmp_path, engine=trainer_image.podman.executable)
    assert backend.submit(job).created
    summary = wait_until(
        lambda: (found := summarize(backend.get("ctiny"))).state.finished and found,
        150,
        "job ctiny to finish",
        interval=1,
    )
    logs = "\n".join(backend.logs("ctiny", all_replicas=True))
    assert summary.state is JobState.SUCCEEDED, logs[-3000:]
    # the worker found the master by its pod name, like the cluster's headless Service
    worker_env = (tmp_path / "ctiny" / "env" / "worker-0.env").read_text().splitlines()
    assert "MASTER_ADDR=ctiny-master-0" in worker_env
    assert re.search(  # a timestamped line (trainer/quiet_logs.py)
        r"^\[worker-0\] \S+ INFO Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2$",
        logs,
        re.MULTILINE,
    )
    result = backend.result("ctiny")
    assert result["world_size"] == 2 and result["run_dir"] == "/runs/ctiny"
    assert (tmp_path / "ctiny" / "volumes" / "runs" / "ctiny" / "metrics.json").exists()

    record = backend.store.read_supervisor("ctiny")
    wait_until(  # the supervisor removes the containers and the network last, then exits
        lambda: not process_alive(record["pid"], record["start_time"]),
        30,
        "the ctiny supervisor to clean up and exit",
        interval=0.5,
    )
    podman = trainer_image.podman
    names = podman.run("ps", "--all", "--format", "{{.Names}}").stdout.split()
    assert not {"ctiny-master-0", "ctiny-worker-0"} & set(names)
    assert podman.run("network", "exists", network_name("ctiny"), check=False).returncode != 0
    assert record["runner"] == "container"
