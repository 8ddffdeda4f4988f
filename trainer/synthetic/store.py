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

import contextlib
import fcntl
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from trainer.contract.errors import DataError, storage_error
from trainer.synthetic.session import GeneratedSession

# 2: ``arrays`` entries carry ``bytes`` and ``sha256`` (1 had dtype and shape only; such
# sessions are still read, their checksums are simply not checked).
FORMAT_VERSION = 2
META_FILE = "meta.json"
_HASH_CHUNK = 1 << 20


def is_complete(path: Path) -> bool:
    """A session folder is usable once its ``meta.json`` exists (it is written last)."""
    return (path / META_FILE).is_file()


def read_meta(path: Path) -> dict[str, Any]:
    """A session's ``meta.json`` as a dict, or a :class:`DataError` naming the file."""
    file = Path(path) / META_FILE
    try:
        text = file.read_text()
    except FileNotFoundError:
        raise DataError(file, "missing: the session folder is incomplete") from None
    except UnicodeDecodeError as error:
        raise DataError(file, f"not valid JSON (not UTF-8 text: {error.reason})") from None
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(file, f"not valid JSON ({error}; {len(text)} characters)") from None
    if not isinstance(meta, dict):
        raise DataError(file, f"not a JSON object but a {type(meta).__name__}")
    return meta


def file_digest(path: Path) -> str:
    """sha256 of a file, read in 1 MiB chunks (sessions can be gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def read_npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """``(shape, dtype, data offset)`` from a ``.npy`` header, reading only the header.

    Raises ``ValueError`` (not a .npy file, unsupported version) or ``OSError``.
    """
    with open(path, "rb") as handle:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
        if fortran and len(shape) > 1:
            raise ValueError("Fortran-ordered arrays are not supported")
        return tuple(int(n) for n in shape), dtype, handle.tell()


def npy_problem(path: Path, expected: dict[str, Any] | None = None) -> str | None:
    """What is wrong with a ``.npy`` file, judged by its header and size alone, or None.

    ``expected`` is its ``meta.json`` entry (``dtype``, ``shape``, optionally ``bytes``).
    A file shorter than its header says is truncated: memory-mapping it would fail, or
    worse, crash with SIGBUS when a page past the end is read mid-training.
    """
    try:
        shape, dtype, offset = read_npy_header(path)
    except FileNotFoundError:
        return "missing"
    except (ValueError, EOFError, SyntaxError) as error:
        return f"not a readable .npy file ({' '.join(str(error).split())[:160]})"
    if dtype.hasobject:
        return "holds Python objects, not a plain array"
    size = path.stat().st_size
    needed = offset + math.prod(shape) * dtype.itemsize
    if size != needed:
        kind = "truncated" if size < needed else "longer than its header says"
        return f"{kind}: {size} bytes, its header ({dtype}, shape {list(shape)}) needs {needed}"
    if expected is None:
        return None
    want_dtype, want_shape = expected.get("dtype"), expected.get("shape")
    if want_dtype is not None and str(want_dtype) != str(dtype):
        try:
            if np.dtype(want_dtype) != dtype:
                return f"holds {dtype}, meta.json says {want_dtype}"
        except TypeError:
            return f"holds {dtype}, meta.json says {want_dtype!r} (not a dtype)"
    if want_shape is not None and list(want_shape) != list(shape):
        return f"has shape {list(shape)}, meta.json says {list(want_shape)}"
    if "bytes" in expected and int(expected["bytes"]) != size:
        return f"{size} bytes, meta.json says {expected['bytes']}"
    return None


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


def _write_file(file: Path, write: Any, shown: Path) -> None:
    """Run ``write(file)``; a full or failing volume becomes an error naming ``shown``.

    A failed ``write`` on an open file carries no file name, so without this the user
    would read "No space left on device" without knowing where. ``shown`` is where the
    file is being published: the private temporary folder is gone by the time anyone looks.
    """
    try:
        write(file)
    except OSError as error:
        converted = storage_error(error.__class__(error.errno, error.strerror), shown)
        if converted is None:
            raise
        raise converted from error


def save_npy(file: Path, array: np.ndarray) -> None:
    """``np.save`` through ordinary buffered writes.

    ``np.save`` writes the data with ``ndarray.tofile``, which reports a short write on a
    full volume as ``OSError("N requested and M written")`` without an errno, so it
    could not be told from a bug; a Python file object raises ``ENOSPC`` instead.
    """
    array = np.asarray(array, order="C")  # keeps 0-d arrays 0-d (ascontiguousarray would not)
    header = np.lib.format.header_data_from_array_1_0(array)
    with open(file, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, header)
        handle.write(memoryview(array.reshape(-1)).cast("B"))


def _write_into(folder: Path, result: GeneratedSession, final: Path) -> None:
    """Arrays first, then ``meta.json`` with each file's dtype, shape, size and sha256."""
    entries = {}
    for name, array in result.arrays.items():
        file = folder / f"{name}.npy"
        _write_file(file, lambda f, a=array: save_npy(f, a), final / file.name)
        entries[name] = {
            "dtype": str(array.dtype),
            "shape": list(array.shape),
            "bytes": file.stat().st_size,
            "sha256": file_digest(file),  # just written: read back from the page cache
        }
    meta = {"format_version": FORMAT_VERSION, **result.meta, "arrays": entries}
    text = json.dumps(meta, indent=1, default=float)
    _write_file(folder / META_FILE, lambda f: f.write_text(text), final / META_FILE)


def _discard(path: Path) -> None:
    """Move a folder out of the way atomically, then delete it."""
    trash = Path(tempfile.mkdtemp(prefix=f".{path.name}.trash-", dir=path.parent))
    with contextlib.suppress(FileNotFoundError):
        os.rename(path, trash / "old")
    shutil.rmtree(trash, ignore_errors=True)


def write_session(result: GeneratedSession, final: Path, replace: bool = False) -> Path:
    """Publish ``result`` at ``final``; if another writer got there first, keep theirs.

    ``replace``: discard whatever is at ``final`` (a damaged session) and publish this one.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; other pods/users must read it
        _write_into(tmp, result, final)
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
    """Hold an advisory lock for ``final`` while generating it (best effort).

    No lock at all when the lock file cannot be opened (a read-only volume): the caller's
    write then fails with an error that says why, and a reader that only needs to find
    the session complete is not stopped by a lock it does not need.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        handle = open(final.parent / f".{final.name}.lock", "a")  # noqa: SIM115
    except OSError:
        yield
        return
    with handle:
        # No lock support on this volume: the atomic rename still keeps it safe.
        with contextlib.suppress(OSError):
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield
