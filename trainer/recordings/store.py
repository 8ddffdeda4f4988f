"""The on-disk form of a :class:`RawSession`: one folder of memory-mappable ``.npy`` files.

Layout (``docs/CONTRACT.md``, "Recorded sessions")::

    <session>/session.json            format, version, name, cids, types, info, source,
                                      arrays (the missing-pct files' dtype/shape/bytes/sha256)
    <session>/missing_pct_times.npy   (K,) float64 seconds        (when the session has one)
    <session>/missing_pct.npy         (K, N) float32 percent 0-100, cids order
    <session>/<type>/meta.json        stim_type, source_rate, n_bins, meta, arrays
    <session>/<type>/<covariate>.npy  (T, ...) at source_rate: stim, robs, eyepos, ...
    <session>/derived/<hash>/         training arrays derived by a dataset config (trainer.data)

Writing is atomic (a private temporary folder renamed into place; ``session.json`` last)
and flushed to the disk before the rename, so a crash or a full disk never leaves a session
that looks complete. Opening reads JSON and ``.npy`` headers only: a damaged file is a
one-line :class:`DataError` naming the file and key before any array data is touched, and
the arrays come back as read-only memory maps (a recording can be larger than memory).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from trainer.contract.errors import DataError
from trainer.recordings.files import (
    file_digest,
    fsync_folder,
    npy_problem,
    publish_folder,
    read_json_object,
    save_json,
    save_npy,
    write_named,
)
from trainer.recordings.session import (
    REQUIRED_COVARIATES,
    MissingPct,
    RawRecording,
    RawSession,
    recording_problems,
)

FORMAT = "corejob-raw-session"
FORMAT_VERSION = 1
SESSION_FILE = "session.json"
TYPE_META_FILE = "meta.json"
DERIVED_DIR = "derived"  # reserved for trainer.data's caches: not a stimulus type
_MISSING_FILES = ("missing_pct_times", "missing_pct")


def is_raw_session(folder: Path) -> bool:
    """A session folder is usable once its ``session.json`` exists (it is written last)."""
    return (Path(folder) / SESSION_FILE).is_file()


def read_manifest(folder: Path) -> dict[str, Any]:
    """``session.json`` checked for the fields every reader relies on (one-line errors)."""
    file = Path(folder) / SESSION_FILE
    manifest = read_json_object(file)
    if manifest.get("format") != FORMAT:
        found = manifest.get("format", "nothing")
        raise DataError(file, f"format: {found!r}, expected {FORMAT!r} (not a raw session)")
    version = manifest.get("version")
    if version != FORMAT_VERSION:
        raise DataError(
            file, f"version: {version!r}; this corejob reads version {FORMAT_VERSION} only"
        )
    for key, kind in (("name", str), ("cids", list), ("types", list), ("info", dict)):
        if key not in manifest:
            raise DataError(file, f"{key}: missing")
        if not isinstance(manifest[key], kind):
            raise DataError(file, f"{key}: a {type(manifest[key]).__name__}, not a {kind.__name__}")
    if not all(isinstance(c, int) and not isinstance(c, bool) for c in manifest["cids"]):
        raise DataError(file, "cids: not a list of integers")
    if len(set(manifest["cids"])) != len(manifest["cids"]):
        raise DataError(file, "cids: repeated unit ids")
    if not manifest["types"] or not all(_is_plain_name(t) for t in manifest["types"]):
        raise DataError(file, f"types: {manifest['types']!r} (non-empty list of folder names)")
    if not isinstance(manifest.get("arrays", {}), dict):
        raise DataError(file, "arrays: not a mapping")
    return manifest


def open_raw_session(folder: Path) -> RawSession:
    """The session at ``folder`` with memory-mapped covariates; :class:`DataError` if damaged.

    Every file is checked by header and size against what its JSON records before any
    data is read: a truncated or replaced file fails here, naming itself, instead of
    crashing a memory map (SIGBUS) in the middle of training.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    cids = np.asarray(manifest["cids"], dtype=np.int64)
    recordings = {
        stim_type: _open_recording(folder / stim_type, stim_type, len(cids))
        for stim_type in manifest["types"]
    }
    return RawSession(
        name=manifest["name"],
        cids=cids,
        recordings=recordings,
        missing_pct=_open_missing_pct(folder, manifest, len(cids)),
        info=manifest["info"],
    )


def verify_raw_session(folder: Path, checksums: bool = False) -> list[str]:
    """Problems of a session folder as one-line ``FILE: problem`` strings; empty when sound.

    Headers and sizes always (what :func:`open_raw_session` checks); ``checksums`` also
    compares every file's sha256 with the one recorded (reads everything: offline checks).
    """
    folder = Path(folder)
    try:
        session = open_raw_session(folder)
    except DataError as error:
        return [str(error)]
    if not checksums:
        return []
    problems = []
    listed = [(folder, read_manifest(folder).get("arrays", {}))]
    listed += [
        (folder / t, read_json_object(folder / t / TYPE_META_FILE)["arrays"])
        for t in session.recordings
    ]
    for where, entries in listed:
        for key, entry in entries.items():
            file = where / f"{key}.npy"
            if "sha256" in entry and file_digest(file) != entry["sha256"]:
                problems.append(f"{file}: checksum mismatch (sha256 differs from the recorded one)")
    return problems


def write_raw_session(
    session: RawSession,
    folder: Path,
    replace: bool = False,
    source: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``session`` to ``folder`` atomically; the folder.

    The session is checked first (:func:`recording_problems`; a bad one is a
    :class:`DataError` naming the file it would have become, and nothing is written). If
    a complete session is already at ``folder`` it is kept unless ``replace`` (another
    writer of the same session got there first). ``source`` says where the data came from
    (generator and spec, importer and input files); it is stored in ``session.json``.
    A full or failing volume is a one-line error naming the file being written, and the
    temporary folder is removed.
    """
    folder = Path(folder)
    _check_writable(session, folder)
    return publish_folder(
        folder,
        lambda tmp: _write_into(tmp, session, folder, dict(source or {})),
        is_raw_session,
        replace,
    )


def _check_writable(session: RawSession, folder: Path) -> None:
    cids = np.asarray(session.cids)
    n_units = int(cids.shape[0]) if cids.ndim == 1 else 0
    if cids.ndim != 1 or cids.dtype.kind not in "iu" or np.unique(cids).size != n_units:
        raise DataError(folder / SESSION_FILE, "cids: not a 1-D list of distinct unit ids")
    if not session.recordings:
        raise DataError(folder / SESSION_FILE, "types: the session has no recording")
    for stim_type, recording in session.recordings.items():
        if not _is_plain_name(stim_type) or stim_type != recording.stim_type:
            raise DataError(folder / stim_type, f"stim_type {recording.stim_type!r}: bad name")
        for key in recording.covariates:
            if not _is_plain_name(key):
                raise DataError(folder / stim_type, f"{key!r}: not usable as a file name")
        for problem in recording_problems(recording, n_units):
            key = problem.split(":", 1)[0]
            raise DataError(folder / stim_type / f"{key}.npy", problem)
    missing = session.missing_pct
    if missing is not None:
        times, pct = np.asarray(missing.times), np.asarray(missing.pct)
        if times.ndim != 1 or pct.shape != (times.shape[0], n_units):
            raise DataError(
                folder / "missing_pct.npy",
                f"missing_pct: shape {pct.shape} with times {times.shape}, expected"
                f" ({times.shape[0] if times.ndim == 1 else 'K'}, {n_units})",
            )


def _write_array(tmp: Path, final: Path, key: str, array: np.ndarray) -> dict[str, Any]:
    """One ``.npy`` file, flushed to the disk; its JSON entry."""
    file = tmp / f"{key}.npy"
    write_named(file, lambda f: save_npy(f, array, fsync=True), final / file.name)
    return {
        "dtype": str(np.asarray(array).dtype),
        "shape": list(np.asarray(array).shape),
        "bytes": file.stat().st_size,
        "sha256": file_digest(file),  # just written: read back from the page cache
    }


def _write_into(tmp: Path, session: RawSession, final: Path, source: dict[str, Any]) -> None:
    """Recordings first, each with its ``meta.json``; ``session.json`` last."""
    for stim_type, recording in session.recordings.items():
        (tmp / stim_type).mkdir()
        arrays = {
            key: _write_array(tmp / stim_type, final / stim_type, key, np.asarray(value))
            for key, value in recording.covariates.items()
        }
        meta = {
            "stim_type": stim_type,
            "source_rate": float(recording.source_rate),
            "n_bins": recording.n_bins,
            "meta": _plain(dict(recording.meta)),
            "arrays": arrays,
        }
        _save_json(tmp / stim_type / TYPE_META_FILE, meta, final / stim_type / TYPE_META_FILE)
        fsync_folder(tmp / stim_type)
    top = {}
    if session.missing_pct is not None:
        top["missing_pct_times"] = _write_array(
            tmp, final, "missing_pct_times", np.asarray(session.missing_pct.times, np.float64)
        )
        top["missing_pct"] = _write_array(
            tmp, final, "missing_pct", np.asarray(session.missing_pct.pct, np.float32)
        )
    manifest = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "name": session.name,
        "cids": [int(c) for c in np.asarray(session.cids)],
        "types": list(session.recordings),
        "info": _plain(dict(session.info)),
        "source": _plain(source),
        "arrays": top,
    }
    _save_json(tmp / SESSION_FILE, manifest, final / SESSION_FILE)
    fsync_folder(tmp)


def _save_json(file: Path, value: Any, shown: Path) -> None:
    write_named(file, lambda f: save_json(f, value, fsync=True), shown)


def _plain(value: Any) -> Any:
    """JSON-able copy: numpy scalars and arrays become Python numbers and lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def _is_plain_name(name: Any) -> bool:
    """Usable as one folder or file name, and not one the layout reserves."""
    return (
        isinstance(name, str)
        and bool(name)
        and "/" not in name
        and not name.startswith(".")
        and name not in (DERIVED_DIR, SESSION_FILE)
    )


def _load(file: Path, entry: Any, key: str, recorded_in: str = TYPE_META_FILE) -> np.ndarray:
    """A read-only memory map of ``file`` after checking it against its JSON ``entry``."""
    if not isinstance(entry, dict):
        raise DataError(file.parent / recorded_in, f"arrays.{key}: not a mapping")
    problem = npy_problem(file, entry, recorded_in)
    if problem is not None:
        raise DataError(file, f"{key}: {problem}")
    if math.prod(entry.get("shape") or [1]) == 0:
        return np.load(file)  # an empty array cannot be memory-mapped
    return np.load(file, mmap_mode="r")


def _open_recording(where: Path, stim_type: str, n_units: int) -> RawRecording:
    meta_file = where / TYPE_META_FILE
    meta = read_json_object(meta_file)
    rate = meta.get("source_rate")
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not rate > 0:
        raise DataError(meta_file, f"source_rate: {rate!r} (a positive number of bins per s)")
    arrays = meta.get("arrays")
    if not isinstance(arrays, dict):
        raise DataError(meta_file, "arrays: missing or not a mapping")
    for key in REQUIRED_COVARIATES:
        if key not in arrays:
            raise DataError(where / f"{key}.npy", f"{key}: missing ({meta_file.name} lists none)")
    covariates = {key: _load(where / f"{key}.npy", entry, key) for key, entry in arrays.items()}
    recording = RawRecording(stim_type, float(rate), covariates, meta.get("meta") or {})
    for problem in recording_problems(recording, n_units):
        key = problem.split(":", 1)[0]
        raise DataError(where / f"{key}.npy" if key in covariates else meta_file, problem)
    if "rates" in covariates and covariates["rates"].shape != covariates["robs"].shape:
        shapes = f"{covariates['rates'].shape} vs robs {covariates['robs'].shape}"
        raise DataError(where / "rates.npy", f"rates: shape {shapes}")
    return recording


def _open_missing_pct(folder: Path, manifest: dict[str, Any], n_units: int) -> MissingPct | None:
    arrays = manifest.get("arrays", {})
    present = [key for key in _MISSING_FILES if key in arrays]
    if not present:
        return None
    if len(present) == 1:
        other = next(key for key in _MISSING_FILES if key not in arrays)
        raise DataError(folder / f"{other}.npy", f"{other}: missing ({SESSION_FILE} lists none)")
    times, pct = (
        _load(folder / f"{key}.npy", arrays[key], key, SESSION_FILE) for key in _MISSING_FILES
    )
    if times.ndim != 1 or times.dtype.kind != "f":
        problem = f"missing_pct_times: {times.dtype} shape {times.shape}, expected float (K,)"
        raise DataError(folder / "missing_pct_times.npy", problem)
    if pct.dtype.kind != "f" or pct.shape != (times.shape[0], n_units):
        raise DataError(
            folder / "missing_pct.npy",
            f"missing_pct: {pct.dtype} shape {pct.shape}, expected float"
            f" ({times.shape[0]}, {n_units}) for {n_units} cids",
        )
    return MissingPct(times=times, pct=pct)
