"""Synthetic sessions in the recorded form (``trainer.recordings``): 240 Hz raw covariates.

``simulate_raw_session(spec)`` is the pure core; ``ensure_raw_session(spec, data_root)``
its effectful shell: the session's folder, generated once. The folder is named by a hash
of the spec and :data:`RAW_GENERATOR_VERSION`, so a changed spec or generator gets a new
folder and never reuses a stale one. Concurrent callers (all ranks of a job, several jobs
on one volume) generate it once: an advisory lock makes the others wait, and the atomic
rename of the store keeps it correct where locks do not work. A damaged session (a
truncated file, a missing key) is regenerated, never reported as an error: its arrays
are a deterministic function of the spec, so the regenerated copy is the original.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from trainer.contract.errors import DataError, StorageError, storage_error
from trainer.recordings.files import folder_lock
from trainer.recordings.store import verify_raw_session, write_raw_session
from trainer.synthetic.raw.simulate import (
    RAW_GENERATOR_VERSION,
    RawSessionSpec,
    simulate_raw_session,
)

__all__ = [
    "RAW_GENERATOR_VERSION",
    "RawSessionSpec",
    "ensure_raw_session",
    "raw_session_dir",
    "simulate_raw_session",
]

RAW_DIR = "synthetic_raw"  # under the data root, beside today's ``synthetic``


def raw_session_dir(spec: RawSessionSpec, data_root: Path) -> Path:
    """``<data_root>/synthetic_raw/<name>-<hash of spec and generator version>``."""
    key = {**spec.to_dict(), "generator_version": RAW_GENERATOR_VERSION}
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]
    return Path(data_root) / RAW_DIR / f"{spec.name}-{digest}"


def _announce(message: str) -> None:
    """Regeneration notices go to stdout: stderr carries only the one error line."""
    print(message, file=sys.stdout, flush=True)


def _problems(folder: Path, checksums: bool) -> list[str] | None:
    """None when nothing is there yet; otherwise its problems (empty: sound)."""
    if not folder.exists():
        return None
    return verify_raw_session(folder, checksums=checksums)


def ensure_raw_session(
    spec: RawSessionSpec,
    data_root: Path,
    force: bool = False,
    verify: bool = False,
    report: Callable[[str], None] = _announce,
) -> Path:
    """The folder of ``spec``'s session under ``data_root``, generated first if needed.

    Needed: missing, damaged (headers and sizes; checksums too with ``verify``) or
    ``force``. ``report`` gets one line naming the damage before a regeneration. Under the
    lock the folder is checked again, so when several processes find it missing or
    damaged, only the first generates and the others use its copy. A full or read-only
    volume is a one-line :class:`StorageError`/:class:`DataError` naming the file.
    """
    folder = raw_session_dir(spec, data_root)
    if not force and _problems(folder, verify) == []:
        return folder
    with folder_lock(folder):
        problems = _problems(folder, verify)
        if problems == [] and not force:  # another process made or repaired it meanwhile
            return folder
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            first = problems[0].removeprefix(f"{folder}{os.sep}")
            report(f"{folder}: damaged session ({first}{more}); regenerating it")
        source = {"generator": "trainer.synthetic.raw", "version": RAW_GENERATOR_VERSION}
        try:
            session = simulate_raw_session(spec)
            return write_raw_session(
                session, folder, replace=force or bool(problems), source=source
            )
        except OSError as error:
            converted = storage_error(error)
            if converted is None:
                raise
            raise _with_damage(converted, problems) from error
        except (DataError, StorageError) as error:
            raise _with_damage(error, problems) from error


def _with_damage(error: DataError | StorageError, problems: list[str] | None) -> Exception:
    """The write's one-line error, led by the damage that made the rewrite necessary."""
    if not problems:
        return error
    return type(error)(None, f"{problems[0]}; regenerating the session failed: {error}")
