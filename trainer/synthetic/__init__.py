"""Synthetic ground-truth V1 sessions: generated on demand, stored as memory-mappable .npy.

``generate_dataset(config)`` makes sure every session of a dataset config exists under
``config.data_root`` (used by ``corejob-train generate`` and lazily by the data module).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from trainer.synthetic.session import SessionSpec, simulate_session
from trainer.synthetic.store import generation_lock, is_complete, write_session


class SessionFields(Protocol):
    """What the generator reads of one session's config (``data.config.SessionConfig``)."""

    name: str
    stim_type: str
    n_units: int
    seed: int
    synthetic: dict[str, Any]


class DatasetFields(Protocol):
    """What the generator reads of a dataset config. The generator sits below the data
    layer, so it names the fields it needs instead of importing the data layer's class."""

    sessions: Sequence[SessionFields]
    n_lags: int
    behavior_dim: int
    frame_rate_hz: float

    def session_dir(self, session: Any) -> Path: ...


__all__ = ["generate_dataset", "generate_session", "session_spec"]


def session_spec(config: DatasetFields, session: SessionFields) -> SessionSpec:
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


def generate_session(config: DatasetFields, session: SessionFields, force: bool = False) -> Path:
    """Path of the session's folder, generating it first if it is missing (or ``force``)."""
    path = config.session_dir(session)
    if is_complete(path) and not force:
        return path
    with generation_lock(path):
        if is_complete(path) and not force:  # another process finished it while we waited
            return path
        return write_session(simulate_session(session_spec(config, session)), path, replace=force)


def generate_dataset(config: DatasetFields, force: bool = False) -> list[Path]:
    """Generate every missing session of a loaded dataset config; their folders, in order.

    Takes the loaded config, not a name: loading configs is the data layer's job
    (``trainer.data.config``), and the generator sits below it.
    """
    return [generate_session(config, s, force=force) for s in config.sessions]
