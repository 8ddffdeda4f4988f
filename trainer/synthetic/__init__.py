"""Synthetic ground-truth V1 sessions: generated on demand, stored as memory-mappable .npy.

``generate_dataset(config)`` makes sure every session of a dataset config exists under
``config.data_root`` and is sound (used by ``corejob-train generate`` and lazily by the
data module). A damaged session is regenerated, never reported as an error: its arrays
are a deterministic function of the config, so the regenerated copy is the original.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from trainer.contract.errors import DataError, StorageError, storage_error
from trainer.synthetic.session import SessionSpec, simulate_session
from trainer.synthetic.store import generation_lock, verify_session, write_session


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


def _announce(message: str) -> None:
    """Regeneration notices go to stdout: stderr carries only the one error line."""
    print(message, file=sys.stdout, flush=True)


def _problems(path: Path, checksums: bool) -> list[str] | None:
    """None when nothing is at ``path`` yet; otherwise its problems (empty: sound)."""
    if not path.exists():
        return None
    return verify_session(path, checksums=checksums)


def generate_session(
    config: DatasetFields,
    session: SessionFields,
    force: bool = False,
    verify: bool = False,
    report: Callable[[str], None] = _announce,
) -> Path:
    """Path of the session's folder, generating it first if missing, damaged or ``force``.

    Damage is judged by :func:`verify_session`: headers and sizes always, checksums with
    ``verify``. ``report`` gets one line naming the folder and the problem before a
    damaged session is regenerated. Regeneration is as race-safe as generation: under the
    lock the session is checked again, so when several ranks find the same damage only
    the first regenerates and the others use its copy.
    """
    path = config.session_dir(session)
    if not force and _problems(path, verify) == []:
        return path
    with generation_lock(path):
        problems = _problems(path, verify)
        if problems == [] and not force:  # another process made or repaired it meanwhile
            return path
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            first = problems[0].removeprefix(f"{path}{os.sep}")
            report(f"{path}: damaged session ({first}{more}); regenerating it")
        try:
            result = simulate_session(session_spec(config, session))
            return write_session(result, path, replace=force or bool(problems))
        except (OSError, DataError, StorageError) as error:
            replacement = _regeneration_failed(error, problems)
            if replacement is error:
                raise
            raise replacement from error


def _regeneration_failed(
    error: OSError | DataError | StorageError, problems: list[str] | None
) -> BaseException:
    """The error to raise when writing a session failed: one line, damage first.

    A read-only data volume with a damaged session is permanent (exit 3), a full one is
    retryable (exit 144); either way the line names the damaged file the user must know.
    """
    converted = storage_error(error) if isinstance(error, OSError) else error
    if converted is None:
        return error
    if not problems:
        return converted
    return type(converted)(None, f"{problems[0]}; regenerating the session failed: {converted}")


def generate_dataset(
    config: DatasetFields, force: bool = False, verify: bool = False
) -> list[Path]:
    """Generate every missing or damaged session of a loaded dataset config; their folders.

    ``verify`` also compares checksums (reads every byte: for ``corejob-train generate``,
    an explicit offline step; the data module checks headers and sizes only, at every
    start). Takes the loaded config, not a name: loading configs is the data layer's job
    (``trainer.data.config``), and the generator sits below it.
    """
    return [generate_session(config, s, force=force, verify=verify) for s in config.sessions]
