"""Shared fixtures: one generated copy of ``synthetic_tiny`` per test session."""

from __future__ import annotations

import pytest

from trainer.data import MultiDatasetDM, load_dataset_config


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def tiny_config(tiny_root):
    return load_dataset_config("synthetic_tiny", data_root=tiny_root)


@pytest.fixture(scope="session")
def tiny_dm(tiny_config):
    dm = MultiDatasetDM(tiny_config, batch_size=64)
    dm.prepare_data()
    dm.setup("fit")
    return dm
