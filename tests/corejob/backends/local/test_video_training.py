"""The video family through the whole platform: ``corejob submit`` of r3d_small on
``synthetic_views_tiny`` as 1 Master + 1 Worker on the local backend (DDP over gloo).

The job succeeds, both ranks end with identical weights, it learns (macro accuracy well
above chance), and ``corejob results`` names the family's metric.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corejob.backends.local.backend import LocalBackend
from corejob.job.state import JobState
from tests.corejob.backends.local.test_training import corejob, wait_until_finished

pytestmark = pytest.mark.slow

# 384 clips / (16 per rank x 2 ranks) = 12 steps per epoch
TRAINER = {"maxEpochs": 4, "batchSize": 16, "numWorkers": 0, "learningRate": 0.003}
CHANCE = (1 / 3 + 1 / 4) / 2  # shape (3 classes) and motion (4): balanced accuracy
STATED_ACCURACY = 0.5


def test_video_job_trains_on_two_ranks_to_a_stated_accuracy(tmp_path: Path):
    sets = [f"--set=trainer.{key}={value}" for key, value in TRAINER.items()]
    extra = '--set-json=trainer.extraArgs=["--loss_function","weighted_ce"]'
    submitted = corejob("submit", "--model", "r3d_small", "--dataset", "synthetic_views_tiny",
                        "--workers", "1", *sets, extra, runs_dir=tmp_path)  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    name = submitted.stdout.split("created job ")[1].split()[0]
    backend = LocalBackend(tmp_path)
    summary = wait_until_finished(backend, name, timeout=600)
    assert summary.state is JobState.SUCCEEDED, summary.message

    digests = {
        replica: [line.rsplit("sha256=", 1)[1] for line in backend.logs(name, replica=replica)
                  if line.startswith("COREJOB_WEIGHTS ")]
        for replica in ("master-0", "worker-0")
    }  # fmt: skip
    assert len(digests["master-0"]) == 1
    assert digests["master-0"] == digests["worker-0"]  # DDP: identical weights on both ranks
    result = backend.result(name)
    assert result["family"] == "video" and result["world_size"] == 2
    assert result["global_step"] == 4 * 12
    assert result["final_metric"] >= STATED_ACCURACY > CHANCE + 0.2, result
    assert set(result["val_acc"]) == set(result["val_f1"]) == {"shape", "motion"}
    assert result["weights_sha256"] == digests["master-0"][0]

    results = corejob("results", runs_dir=tmp_path)
    assert results.returncode == 0, results.stderr
    assert "best val macro accuracy" in results.stdout
    assert f"{result['best_metric']:.4f}" in results.stdout
    as_json = json.loads(corejob("results", "-o", "json", runs_dir=tmp_path).stdout)
    assert as_json[0]["result"]["val_acc"]["motion"] == result["val_acc"]["motion"]
