"""Fixtures for the runtime tests: synthetic data generated once per test session."""

import signal
from pathlib import Path

import pytest

from trainer.cli import run_cli


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """``synthetic_tiny`` on disk, made by ``corejob-train generate`` (shared, read-only use)."""
    root = tmp_path_factory.mktemp("tiny-data")
    previous = signal.getsignal(signal.SIGTERM)
    try:
        code = run_cli(
            ["generate", "--dataset_configs_path", "synthetic_tiny", "--data_root", str(root)]
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert code == 0
    assert any(root.iterdir())
    return root
