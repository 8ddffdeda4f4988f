"""Array files that concurrent writers cannot corrupt and readers can check without reading.

The low-level half of every session store (recorded sessions here, synthetic sessions in
``trainer.synthetic.store``): ``.npy`` files written with plain buffered writes (a full
disk is an ``ENOSPC`` error naming the file, not numpy's errno-less short write), checked
by header and size alone (a truncated file would otherwise crash a memory map with SIGBUS
mid-training), published by building a private temporary folder and renaming it into
place (readers see nothing or everything), and an advisory lock so that concurrent
writers of one folder wait for the first instead of duplicating its work.
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from trainer.contract.errors import DataError, storage_error

_HASH_CHUNK = 1 << 20


def read_json_object(file: Path) -> dict[str, Any]:
    """A JSON file holding an object, or a one-line :class:`DataError` naming the file."""
    try:
        text = file.read_text()
    except FileNotFoundError:
        raise DataError(file, "missing: the session folder is incomplete") from None
    except UnicodeDecodeError as error:
        raise DataError(file, f"not valid JSON (not UTF-8 text: {error.reason})") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(file, f"not valid JSON ({error}; {len(text)} characters)") from None
    if not isinstance(value, dict):
        raise DataError(file, f"not a JSON object but a {type(value).__name__}")
    return value


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


def npy_problem(
    path: Path, expected: dict[str, Any] | None = None, recorded_in: str = "meta.json"
) -> str | None:
    """What is wrong with a ``.npy`` file, judged by its header and size alone, or None.

    ``expected`` is the entry its folder's JSON records (``dtype``, ``shape``, optionally
    ``bytes``; ``recorded_in`` names that file). A file shorter than its header says is
    truncated: memory-mapping it would fail, or worse, crash with SIGBUS when a page past
    the end is read mid-training.
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
                return f"holds {dtype}, {recorded_in} says {want_dtype}"
        except TypeError:
            return f"holds {dtype}, {recorded_in} says {want_dtype!r} (not a dtype)"
    if want_shape is not None and list(want_shape) != list(shape):
        return f"has shape {list(shape)}, {recorded_in} says {list(want_shape)}"
    if "bytes" in expected and int(expected["bytes"]) != size:
        return f"{size} bytes, {recorded_in} says {expected['bytes']}"
    return None


def write_named(file: Path, write: Callable[[Path], Any], shown: Path) -> None:
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


def save_npy(file: Path, array: np.ndarray, fsync: bool = False) -> None:
    """``np.save`` through ordinary buffered writes (optionally flushed to the disk).

    ``np.save`` writes the data with ``ndarray.tofile``, which reports a short write on a
    full volume as ``OSError("N requested and M written")`` without an errno, so it
    could not be told from a bug; a Python file object raises ``ENOSPC`` instead.
    """
    array = np.asarray(array, order="C")  # keeps 0-d arrays 0-d (ascontiguousarray would not)
    header = np.lib.format.header_data_from_array_1_0(array)
    with open(file, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, header)
        handle.write(memoryview(array.reshape(-1)).cast("B"))
        if fsync:
            handle.flush()
            os.fsync(handle.fileno())


def save_json(file: Path, value: Any, fsync: bool = False) -> None:
    """A JSON file written (and optionally flushed to the disk) in one go."""
    with open(file, "w") as handle:
        handle.write(json.dumps(value, indent=1, default=float))
        if fsync:
            handle.flush()
            os.fsync(handle.fileno())


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (new names, renames) to the disk where the OS allows."""
    with contextlib.suppress(OSError):
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def discard(path: Path) -> None:
    """Move a folder out of the way atomically, then delete it."""
    trash = Path(tempfile.mkdtemp(prefix=f".{path.name}.trash-", dir=path.parent))
    with contextlib.suppress(FileNotFoundError):
        os.rename(path, trash / "old")
    shutil.rmtree(trash, ignore_errors=True)


def publish_folder(
    final: Path,
    fill: Callable[[Path], None],
    is_complete: Callable[[Path], bool],
    replace: bool = False,
) -> Path:
    """Build a folder with ``fill(tmp)`` in a private temporary folder, rename it to ``final``.

    If a complete folder (``is_complete``) is already at ``final`` when the rename comes,
    another writer won the race: theirs is kept and this copy discarded. ``replace``
    discards whatever is at ``final`` first (a damaged session, an explicit rewrite). The
    temporary folder never outlives the call, so a failed write leaves nothing behind.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; other pods/users must read it
        fill(tmp)
        if final.exists() and (replace or not is_complete(final)):
            discard(final)
        try:
            os.rename(tmp, final)
        except OSError:
            if not is_complete(final):
                raise
        fsync_folder(final.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


@contextlib.contextmanager
def folder_lock(final: Path) -> Iterator[None]:
    """Hold an advisory lock for ``final`` while writing it (best effort).

    No lock at all when the lock file cannot be opened (a read-only volume): the caller's
    write then fails with an error that says why, and a reader that only needs to find
    the folder complete is not stopped by a lock it does not need.
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
