"""Small video-family objects shared by the tests of trainer/video."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from trainer.configs import DATASETS, MODELS, resolve_config
from trainer.configs.video_schema import VideoDatasetConfig


def bundled(kind: str, name: str) -> dict:
    data = yaml.safe_load(Path(resolve_config(kind, name)).read_text())
    data.setdefault("name", name)
    return data


@pytest.fixture
def small_model_config() -> dict:
    return bundled(MODELS, "r3d_small")


@pytest.fixture
def micro_dataset() -> VideoDatasetConfig:
    """``synthetic_views_tiny`` cut to a few clips (generated in memory in a second)."""
    config = VideoDatasetConfig.from_dict(bundled(DATASETS, "synthetic_views_tiny"), "tiny")
    return replace(config, n_train=48, n_val=16)
