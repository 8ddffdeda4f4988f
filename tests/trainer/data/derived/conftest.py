"""A small synthetic raw session on disk and VisionCore's history config fitted to it."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainer.configs.dataset_schema import load_dataset_files
from trainer.configs.dataset_schema.synthetic import resolve_params
from trainer.recordings.session import RawSession
from trainer.recordings.store import write_raw_session
from trainer.synthetic.raw import RawSessionSpec, simulate_raw_session

VISIONCORE = Path(__file__).parents[1] / "visioncore_dataset_configs"
HISTORY_CONFIG = VISIONCORE / "multi_basic_120_backimage_history.yaml"
TYPES = ("backimage", "gaborium")


@pytest.fixture(scope="session")
def raw_session() -> RawSession:
    params = resolve_params({"preset": "tiny", "n_frames": 600})
    return simulate_raw_session(RawSessionSpec("s", 8, 1, TYPES, 10, params))


@pytest.fixture(scope="session")
def raw_folder(raw_session, tmp_path_factory) -> Path:
    return write_raw_session(raw_session, tmp_path_factory.mktemp("raw") / "s")


@pytest.fixture
def history_fields(raw_session) -> dict:
    """VisionCore's ``multi_basic_120_backimage_history`` with this session's unit ids
    (six, in reverse order) and both of its stimulus types."""
    entry = load_dataset_files(str(HISTORY_CONFIG)).sessions[0]
    cids = [int(c) for c in raw_session.cids[:6][::-1]]
    return {**entry.fields, "cids": cids, "types": list(TYPES)}
