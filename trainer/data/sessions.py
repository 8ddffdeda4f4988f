"""Where each session's raw recording is: generated (synthetic) or imported beforehand.

A session with a ``synthetic:`` block is simulated at 240 Hz on first use under
``<data_root>/synthetic_raw/`` (``trainer.synthetic.raw.ensure_raw_session``: once per spec,
race-safe, damaged copies regenerated). Any other session is a recording the user brings:
``corejob-train import-visioncore SRC <data_root>`` converts VisionCore's files into
``<data_root>/<session>/``; when it is not there the error says so and how to fix it.
"""

from __future__ import annotations

from pathlib import Path

from trainer.contract.errors import DataError
from trainer.data.config import DatasetConfig, SessionConfig
from trainer.data.derived.cache import ensure_derived
from trainer.recordings.store import is_raw_session
from trainer.synthetic.raw import ensure_raw_session


def recorded_session_folder(config: DatasetConfig, session: SessionConfig) -> Path:
    """The imported session's folder, or a one-line error naming it and the import command."""
    folder = config.data_root / session.name
    if not is_raw_session(folder):
        raise DataError(
            folder,
            f"no raw session {session.name!r} here (named by {session.source}); convert "
            f"VisionCore's files with: corejob-train import-visioncore SRC {config.data_root}",
        )
    return folder


def raw_session_folders(config: DatasetConfig, verify: bool = False) -> list[Path]:
    """Every session's raw folder, generating the synthetic ones that are missing or
    damaged (``verify``: also compare checksums, reading every byte)."""
    return [
        ensure_raw_session(config.synthetic_spec(s), config.data_root, verify=verify)
        if s.synthetic is not None
        else recorded_session_folder(config, s)
        for s in config.sessions
    ]


def derived_session_folders(
    config: DatasetConfig,
    dset_dtype: str,
    derived_dir: Path | None = None,
    verify: bool = False,
) -> list[Path]:
    """Every session's derived-arrays folder: raw sessions first (generated or imported,
    see :func:`raw_session_folders`), then the config's arrays derived from them where
    missing or damaged (``trainer.data.derived.cache.ensure_derived``)."""
    raws = raw_session_folders(config, verify=verify)
    return [
        ensure_derived(raw, session.fields, dset_dtype, session.source, derived_dir=derived_dir)
        for raw, session in zip(raws, config.sessions, strict=True)
    ]
