"""Writing generated sessions to disk so that concurrent writers cannot corrupt them.

All ranks of a job (and several jobs) may share one data volume and find a session
missing at the same moment. Each writer builds the session in a private temporary folder
next to the destination and renames it into place: ``rename`` of a directory is atomic,
so readers see either nothing or a complete session (``meta.json`` is written last), and
a writer that loses the race simply discards its copy. An advisory lock file lets
concurrent writers on one machine (or a volume that supports ``flock``) wait for the first
instead of duplicating its work; correctness never depends on it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from trainer.synthetic.session import GeneratedSession

FORMAT_VERSION = 1
META_FILE = "meta.json"


def is_complete(path: Path) -> bool:
    """A session folder is usable once its ``meta.json`` exists (it is written last)."""
    return (path / META_FILE).is_file()


def read_meta(path: Path) -> dict:
    return json.loads((path / META_FILE).read_text())


def _write_into(folder: Path, result: GeneratedSession) -> None:
    shapes = {}
    for name, array in result.arrays.items():
        np.save(folder / f"{name}.npy", np.ascontiguousarray(array))
        shapes[name] = {"dtype": str(array.dtype), "shape": list(array.shape)}
    meta = {"format_version": FORMAT_VERSION, **result.meta, "arrays": shapes}
    (folder / META_FILE).write_text(json.dumps(meta, indent=1, default=float))


def _discard(path: Path) -> None:
    """Move a folder out of the way atomically, then delete it."""
    trash = Path(tempfile.mkdtemp(prefix=f".{path.name}.trash-", dir=path.parent))
    with contextlib.suppress(FileNotFoundError):
        os.rename(path, trash / "old")
    shutil.rmtree(trash, ignore_errors=True)


def write_session(result: GeneratedSession, final: Path, replace: bool = False) -> Path:
    """Publish ``result`` at ``final``; if another writer got there first, keep theirs."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; other pods/users must read it
        _write_into(tmp, result)
        if final.exists() and (replace or not is_complete(final)):
            _discard(final)
        try:
            os.rename(tmp, final)
        except OSError:
            if not is_complete(final):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


@contextlib.contextmanager
def generation_lock(final: Path) -> Iterator[None]:
    """Hold an advisory lock for ``final`` while generating it (best effort)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.parent / f".{final.name}.lock", "a") as handle:
        # No lock support on this volume: the atomic rename still keeps it safe.
        with contextlib.suppress(OSError):
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield
