"""Writing generated sessions to disk so that concurrent writers cannot corrupt them, and
telling a damaged session from a good one.

All ranks of a job (and several jobs) may share one data volume and find a session
missing at the same moment. Each writer builds the session in a private temporary folder
next to the destination and renames it into place: ``rename`` of a directory is atomic,
so readers see either nothing or a complete session (``meta.json`` is written last), and
a writer that loses the race simply discards its copy. An advisory lock file lets
concurrent writers on one machine (or a volume that supports ``flock``) wait for the first
instead of duplicating its work; correctness never depends on it.

A volume can still damage a published session later (a full disk during a copy, a
truncated rsync, bit rot). ``meta.json`` therefore records every array's dtype, shape,
file size and sha256. :func:`verify_session` compares the files with it: headers and
sizes always (a few ``stat`` calls and header reads, cheap enough for every start), the
checksums only when asked (they read every byte: an explicit offline step).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from trainer.contract.errors import DataError
from trainer.recordings.files import (  # noqa: F401 (read_npy_header, save_npy: re-exported)
    file_digest,
    folder_lock,
    npy_problem,
    publish_folder,
    read_json_object,
    read_npy_header,
    save_npy,
    write_named,
)
from trainer.synthetic.session import GeneratedSession

# 2: ``arrays`` entries carry ``bytes`` and ``sha256`` (1 had dtype and shape only; such
# sessions are still read, their checksums are simply not checked).
FORMAT_VERSION = 2
META_FILE = "meta.json"
# The shared low-level helpers live with the recordings store; these names stay for callers.
generation_lock = folder_lock


def is_complete(path: Path) -> bool:
    """A session folder is usable once its ``meta.json`` exists (it is written last)."""
    return (path / META_FILE).is_file()


def read_meta(path: Path) -> dict[str, Any]:
    """A session's ``meta.json`` as a dict, or a :class:`DataError` naming the file."""
    return read_json_object(Path(path) / META_FILE)


def verify_session(path: Path, checksums: bool = False) -> list[str]:
    """Problems of a session folder as ``FILE: problem`` lines; empty when it is sound.

    Always: ``meta.json`` parses and every array it lists has the recorded header, dtype,
    shape and size (cheap: no array data is read). ``checksums``: also the sha256 of every
    file that records one (reads everything; format 1 sessions record none).
    """
    path = Path(path)
    try:
        meta = read_meta(path)
    except DataError as error:
        return [str(error)]
    arrays = meta.get("arrays")
    if not isinstance(arrays, dict) or not arrays:
        return [f"{path / META_FILE}: lists no arrays (written by an unknown tool?)"]
    problems = []
    for name, entry in arrays.items():
        file = path / f"{name}.npy"
        if not isinstance(entry, dict):
            problems.append(f"{path / META_FILE}: arrays.{name}: not a mapping")
            continue
        problem = npy_problem(file, entry)
        if problem is None and checksums and "sha256" in entry:
            digest = file_digest(file)
            if digest != entry["sha256"]:
                recorded = str(entry["sha256"])
                problem = f"checksum mismatch: sha256 {digest[:16]}, recorded {recorded[:16]}"
        if problem is not None:
            problems.append(f"{file}: {problem}")
    return problems


def _write_into(folder: Path, result: GeneratedSession, final: Path) -> None:
    """Arrays first, then ``meta.json`` with each file's dtype, shape, size and sha256."""
    entries = {}
    for name, array in result.arrays.items():
        file = folder / f"{name}.npy"
        write_named(file, lambda f, a=array: save_npy(f, a), final / file.name)
        entries[name] = {
            "dtype": str(array.dtype),
            "shape": list(array.shape),
            "bytes": file.stat().st_size,
            "sha256": file_digest(file),  # just written: read back from the page cache
        }
    meta = {"format_version": FORMAT_VERSION, **result.meta, "arrays": entries}
    text = json.dumps(meta, indent=1, default=float)
    write_named(folder / META_FILE, lambda f: f.write_text(text), final / META_FILE)


def write_session(result: GeneratedSession, final: Path, replace: bool = False) -> Path:
    """Publish ``result`` at ``final``; if another writer got there first, keep theirs.

    ``replace``: discard whatever is at ``final`` (a damaged session) and publish this one.
    """
    return publish_folder(final, lambda tmp: _write_into(tmp, result, final), is_complete, replace)
