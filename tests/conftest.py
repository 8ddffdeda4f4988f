"""Shared pytest setup: W&B never touches the network; one generated ``synthetic_tiny``."""

import os
from pathlib import Path

import pytest

from tests.support.trainer_launch import run_trainer

# The real Kubernetes API server fixtures (real_cluster, real_namespace) for every test.
pytest_plugins = ["tests.support.kube_real"]

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")
# Jobs rendered by the chart carry their own WANDB_MODE (offline by default): the suite's
# site defaults turn it off for every job a test submits through corejob.
os.environ.setdefault("COREJOB_VALUES", str(Path(__file__).parent / "support" / "site-values.yaml"))


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """``synthetic_tiny`` on disk, made by ``corejob-train generate`` (shared, read-only use)."""
    root = tmp_path_factory.mktemp("tiny-data")
    code = run_trainer(
        ["generate", "--dataset_configs_path", "synthetic_tiny", "--data_root", str(root)]
    )
    assert code == 0
    assert any(root.iterdir())
    return root
