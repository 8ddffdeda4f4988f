"""A model config of one's own, locally: copied into the job's directory, said so, trained.

Before: ``-m /tmp/my_model.yaml`` was silently rewritten to ``<job>/volumes/tmp/...`` (the
pod's /tmp), a file that does not exist.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from corejob.backends.local.backend import LocalBackend
from corejob.backends.local.replicas import (
    config_map_files,
    mount_table,
    process_spec,
    replica_plans,
)
from corejob.job.shipped.owned import owned_objects
from corejob.job.spec import JobRequest, build_job
from corejob.job.state import JobState, summarize
from tests.corejob.job.test_shipped import own_dataset
from tests.support.wait import wait_until
from trainer.configs import CONFIGS_DIR

SMALL_CORE = ("channels: [64, 64]", "channels: [8, 8]")  # res_small, narrower: quick on a CPU


def own_model(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "my_model.yaml"
    path.write_text((CONFIGS_DIR / "models" / "res_small.yaml").read_text().replace(*SMALL_CORE))
    return path


@pytest.mark.parametrize("flavor", ["pytorchjob", "trainjob"])
def test_the_trainer_is_pointed_at_the_jobs_copy(tmp_path: Path, flavor: str):
    """Either flavour (a TrainJob's nodes read the volume from its runtime patch): the
    arguments name the copy, and the copy lays session files out as the volume's items."""
    model, dataset = own_model(tmp_path), own_dataset(tmp_path)
    request = JobRequest(str(model), str(dataset), workers=0, values={"apiFlavor": flavor})
    job = build_job(request, None)
    (plan,) = replica_plans(job, master_addr="127.0.0.1", master_port=1, cpu_count=1,
                            host_environ={})  # fmt: skip
    job_dir = tmp_path / "runs" / job["metadata"]["name"]
    argv = process_spec(plan, mount_table(plan, job_dir, tmp_path / "claims"), "py", {}).argv
    copy = job_dir / "configmaps" / f"{job['metadata']['name']}-configs"
    assert argv[argv.index("--model_config") + 1] == str(copy / "my_model.yaml")
    assert argv[argv.index("--dataset_configs_path") + 1] == str(copy / "my_data.yaml")
    (config_map,) = owned_objects(job)
    files = config_map_files(job, config_map)
    assert (
        files["my_data/tiny_back.yaml"] == (dataset.parent / "my_data/tiny_back.yaml").read_text()
    )
    assert sorted(files) == ["my_data.yaml", "my_data/tiny_back.yaml", "my_data/tiny_gabor.yaml",
                             "my_model.yaml"]  # fmt: skip


@pytest.mark.slow
def test_a_local_job_trains_on_the_copies_of_the_users_files(tmp_path: Path):
    """The user's model and dataset (with its session files): copied, then the originals
    are deleted, and the job trains on the copies."""
    model, dataset = own_model(tmp_path / "mine"), own_dataset(tmp_path / "mine")
    submitted = subprocess.run(
        [sys.executable, "-m", "corejob", "submit", "-m", str(model), "-d", str(dataset),
         "--workers", "0", "--set", "trainer.maxEpochs=1", "--set", "trainer.stepsPerEpoch=4",
         "--set", "trainer.numWorkers=0", "--backend", "local", "--runs-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    name = submitted.stdout.split("created job ")[1].split()[0]
    copies = tmp_path / name / "configmaps" / f"{name}-configs"
    assert (
        f"corejob: copied my_data.yaml, my_data/tiny_back.yaml, my_data/tiny_gabor.yaml, "
        f"my_model.yaml into job {name}'s volume: {copies}\n"
    ) in submitted.stderr
    text = model.read_text()
    shutil.rmtree(tmp_path / "mine")  # the job must not need the originals
    assert (copies / "my_model.yaml").read_text() == text
    assert (copies / "my_data" / "tiny_back.yaml").is_file()

    backend = LocalBackend(tmp_path)
    summary = wait_until(lambda: (s := summarize(backend.get(name))).state.finished and s,
                         150, f"job {name} to finish", interval=0.5)  # fmt: skip
    assert summary.state is JobState.SUCCEEDED, summary.message
    result = backend.result(name)
    assert (result["model"], result["dataset"]) == ("my_model", "my_data")
