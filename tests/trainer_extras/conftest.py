"""Fixtures for the extras tests: synthetic_tiny generated once per test session."""

import signal
from pathlib import Path

import pytest

from trainer.cli import run_cli


def run_trainer(argv: list[str]) -> int:
    """``corejob-train`` in this process; restores the SIGTERM handler it installs."""
    previous = signal.getsignal(signal.SIGTERM)
    try:
        return run_cli(argv)
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("extras-tiny-data")
    code = run_trainer(
        ["generate", "--dataset_configs_path", "synthetic_tiny", "--data_root", str(root)]
    )
    assert code == 0
    return root
