"""Synthetic ground-truth V1 sessions: generated on demand, stored as memory-mappable .npy.

``generate_dataset(config)`` makes sure every session of a dataset config exists under
``config.data_root`` (used by ``corejob-train generate`` and lazily by the data module).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from trainer.synthetic.session import SessionSpec, simulate_session
from trainer.synthetic.store import generation_lock, is_complete, write_session

if TYPE_CHECKING:
    from trainer.data.config import DatasetConfig, SessionConfig

__all__ = ["generate_dataset", "generate_session", "session_spec"]


def session_spec(config: DatasetConfig, session: SessionConfig) -> SessionSpec:
    return SessionSpec(
        name=session.name,
        stim_type=session.stim_type,
        n_units=session.n_units,
        seed=session.seed,
        n_lags=config.n_lags,
        behavior_dim=config.behavior_dim,
        frame_rate_hz=config.frame_rate_hz,
        params=dict(session.synthetic),
    )


def generate_session(config: DatasetConfig, session: SessionConfig, force: bool = False) -> Path:
    """Path of the session's folder, generating it first if it is missing (or ``force``)."""
    path = config.session_dir(session)
    if is_complete(path) and not force:
        return path
    with generation_lock(path):
        if is_complete(path) and not force:  # another process finished it while we waited
            return path
        return write_session(simulate_session(session_spec(config, session)), path, replace=force)


def generate_dataset(dataset_config: DatasetConfig | str | Path, force: bool = False) -> list[Path]:
    """Generate every missing session of a dataset config; returns their folders in order."""
    from trainer.data.config import DatasetConfig, load_dataset_config

    config = (
        dataset_config
        if isinstance(dataset_config, DatasetConfig)
        else load_dataset_config(dataset_config)
    )
    return [generate_session(config, s, force=force) for s in config.sessions]
