"""Derived training arrays cached next to their raw session: ``<session>/derived/<key>/``
(or under ``--derived_dir`` when the data volume is read-only).

The key is a hash of everything that shapes the arrays: the derivation's version, the
config fields that reach them (types, sampling, transforms, datafilters, cids, the sample
keys), the stimulus storage dtype and the raw session's identity (its JSON manifests and
array sizes). A config edit therefore derives a new folder; an unchanged one reuses it.

Publishing is the raw store's: arrays are written into a private temporary folder,
``meta.json`` (every array's dtype, shape and size) last, and the folder renamed into place,
under an advisory lock so that ranks and jobs sharing a volume derive once and the others
wait and reuse. A folder whose files disagree with its ``meta.json`` (truncated, replaced)
is derived again (one line says so); reading never trusts a memory map that would SIGBUS.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from trainer.contract.errors import DataError
from trainer.data.derived.derive import derive_session
from trainer.recordings.files import (
    folder_lock,
    npy_problem,
    publish_folder,
    read_json_object,
    save_json,
    save_npy,
    write_named,
)
from trainer.recordings.store import DERIVED_DIR, open_raw_session

DERIVE_VERSION = 2  # 2: stim stored newest frame first (TIME_REVERSED)
# Stored with time reversed (row r = bin T-1-r); ``DerivedSession.array`` gives the
# reversed view back, so readers see bins in time order. VisionCore's lag order (index 0 =
# the current bin) then reads each sample's window forwards in memory: a backwards
# fancy-index read of 64 x 64 frames from a memory map is ~30 % slower (4.6 vs 3.5 ms per
# 256 x 33 frames), the host data path's main cost.
TIME_REVERSED = ("stim",)
META_FILE = "meta.json"
FORMAT = "corejob-derived-arrays"
# Config fields that change derived arrays (split, seed, augmentation do not).
SHAPING_FIELDS = ("types", "sampling", "transforms", "datafilters", "cids", "keys_lags")


def _raw_identity(raw: Path) -> dict[str, Any]:
    """What identifies a raw session's content without reading its arrays."""
    identity: dict[str, Any] = {}
    # Not into derived/: its caches (and their temporary folders) grow with every config.
    tops = [p for p in raw.iterdir() if p.name != DERIVED_DIR and not p.name.startswith(".")]
    files = [f for top in tops for f in ([top] if top.is_file() else top.rglob("*"))]
    for file in sorted(files):
        rel = file.relative_to(raw)
        if rel.name.startswith(".") or not file.is_file():
            continue
        if file.suffix == ".json":
            identity[str(rel)] = hashlib.sha1(file.read_bytes()).hexdigest()
        else:
            identity[str(rel)] = file.stat().st_size
    return identity


def derived_key(raw: Path, fields: dict[str, Any], dset_dtype: str) -> str:
    spec = {
        "version": DERIVE_VERSION,
        "dset_dtype": dset_dtype,
        "fields": {k: fields.get(k) for k in SHAPING_FIELDS},
        "raw": _raw_identity(raw),
    }
    return hashlib.sha1(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]


def derived_problems(folder: Path) -> list[str] | None:
    """None when nothing is there; else ``FILE: problem`` lines (empty: sound)."""
    meta_file = folder / META_FILE
    if not folder.exists():
        return None
    try:
        meta = read_json_object(meta_file)
    except DataError as error:
        return [str(error)]
    arrays = meta.get("arrays")
    if meta.get("format") != FORMAT or not isinstance(arrays, dict) or not arrays:
        return [f"{meta_file}: not a derived-arrays manifest"]
    problems = []
    for name, entry in arrays.items():
        problem = npy_problem(folder / f"{name}.npy", entry if isinstance(entry, dict) else None)
        if problem is not None:
            problems.append(f"{folder / f'{name}.npy'}: {problem}")
    return problems


def _announce(message: str) -> None:
    print(message, file=sys.stdout, flush=True)


def ensure_derived(
    raw: Path,
    fields: dict[str, Any],
    dset_dtype: str,
    where: str,
    report: Callable[[str], None] = _announce,
    derived_dir: Path | None = None,
) -> Path:
    """The folder of a session's derived arrays for ``fields``, deriving them if needed.

    ``where`` is the session's config file (errors of the ops name it). Arrays already
    beside the raw session are used wherever they are (a read-only data volume prepared
    with ``corejob-train generate``); missing ones are derived beside it, or under
    ``derived_dir/<session folder>/`` when given (``--derived_dir``: a writable folder all
    ranks share, for data volumes mounted read-only).
    """
    raw = Path(raw)
    key = derived_key(raw, fields, dset_dtype)
    final = raw / DERIVED_DIR / key
    if derived_problems(final) == []:
        return final
    if derived_dir is not None:
        final = Path(derived_dir) / raw.name / key
        if derived_problems(final) == []:
            return final
    elif not _writable(raw):
        raise DataError(
            raw,
            f"read-only, and its derived arrays for {where} ({DERIVED_DIR}/{key}) are not"
            " there: pass --derived_dir (a writable folder every rank shares) or run"
            " `corejob-train generate` with the same configs where the volume is writable",
        )
    with folder_lock(final):
        problems = derived_problems(final)
        if problems == []:  # another rank or job derived it meanwhile
            return final
        if problems:
            report(f"{final}: damaged derived arrays ({problems[0]}); deriving them again")
        derived = derive_session(open_raw_session(raw), fields, dset_dtype, where)

        def fill(tmp: Path) -> None:
            entries = {}
            for name, array in derived.arrays.items():
                file = tmp / f"{name}.npy"  # a full volume's error names the published path
                stored = np.ascontiguousarray(array[::-1]) if name in TIME_REVERSED else array
                write_named(file, lambda f, a=stored: save_npy(f, a), final / file.name)
                entries[name] = {
                    "dtype": str(array.dtype),
                    "shape": list(array.shape),
                    "bytes": (tmp / f"{name}.npy").stat().st_size,
                    "time_reversed": name in TIME_REVERSED,
                }
            meta = {"format": FORMAT, "version": DERIVE_VERSION, **derived.meta}
            write_named(
                tmp / META_FILE,
                lambda f: save_json(f, {**meta, "arrays": entries}),
                final / META_FILE,
            )

        return publish_folder(
            final, fill, lambda p: derived_problems(p) == [], replace=bool(problems)
        )


def _writable(raw: Path) -> bool:
    """Whether the derived arrays can be written beside ``raw`` (its ``derived/`` folder
    when it exists, else ``raw`` itself): a read-only mount answers False."""
    folder = raw / DERIVED_DIR
    return os.access(folder if folder.is_dir() else raw, os.W_OK)


class DerivedSession:
    """A session's derived arrays, memory-mapped on first use in each process (picklable).

    Only the path travels to DataLoader workers; each opens its own maps, so pages come
    from the shared page cache. Construction checks every file against ``meta.json``.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        problems = derived_problems(self.folder)
        if problems is None:
            raise DataError(self.folder, "missing: derive it first (ensure_derived)")
        if problems:
            raise DataError(None, f"{problems[0]}; delete {self.folder} to derive it again")
        self.meta = read_json_object(self.folder / META_FILE)
        self._maps: dict[str, np.ndarray] = {}

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_maps": {}}

    @property
    def keys(self) -> list[str]:
        return list(self.meta["arrays"])

    def path_of(self, name: str) -> Path:
        return self.folder / f"{name}.npy"

    def shape_of(self, name: str) -> tuple[int, ...]:
        return tuple(self.meta["arrays"][name]["shape"])

    def array(self, name: str) -> np.ndarray:
        """The array in time order (a reversed view of a ``time_reversed`` file)."""
        if name not in self._maps:
            if name not in self.meta["arrays"]:
                raise KeyError(f"{self.folder}: no derived array {name!r} (has {self.keys})")
            path = self.path_of(name)
            try:
                stored = np.load(path, mmap_mode="r")
            except (ValueError, EOFError, OSError) as error:  # damaged after the check
                raise DataError(path, f"cannot be memory-mapped ({error})") from None
            reversed_ = self.meta["arrays"][name].get("time_reversed", False)
            self._maps[name] = stored[::-1] if reversed_ else stored
        return self._maps[name]
