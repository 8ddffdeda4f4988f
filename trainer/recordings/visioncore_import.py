"""``corejob-train import-visioncore SRC DST``: VisionCore recordings into our session store.

Input (VisionCore's layout; README, "Importing VisionCore recordings")::

    SRC/<session>/datasets/<type>.dset   DictDataset.save: {covariates, metadata}
    SRC/<session>/units.npz              optional: cids, missing_pct_times, missing_pct

Output: ``DST/<session>/`` in the raw-session layout (``trainer.recordings.store``), written
atomically per session after every session has been checked: a bad file anywhere writes
nothing, and an interrupted import leaves whole sessions only.

Conversions are lossless or VisionCore's own reading of a value, and the dry run lists
them: counts stored as integers or float64 become float32 (checked exact), a numeric
``dpi_valid`` becomes ``dpi_valid > 0`` (VisionCore's ``valid_nlags`` rule), integer
types widen, float32 ``t_bins`` widen to float64. Anything else that does not fit the
recorded form (``recording_problems``, contiguous trials, the ``t_bins`` step vs the source
rate, one unit count across types) is a one-line error naming the file and key.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trainer.contract.errors import DataError
from trainer.recordings.session import (
    REQUIRED_COVARIATES,
    MissingPct,
    RawRecording,
    RawSession,
    recording_problems,
)
from trainer.recordings.store import is_raw_session, write_raw_session
from trainer.recordings.visioncore_files import load_dset, load_units

DEFAULT_SOURCE_RATE = 240.0  # VisionCore's recordings (its configs' sampling.source_rate)
_RATE_TOLERANCE = 0.02  # relative: the median t_bins step must match the source rate


@dataclass(frozen=True)
class PlannedSession:
    """One session to import: its ``.dset`` files by stimulus type, and its destination."""

    name: str
    source: Path
    destination: Path
    files: dict[str, Path]


def add_import_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``import-visioncore`` subcommand's options (``trainer.cli`` mounts them)."""
    parser.add_argument(
        "src", metavar="SRC", help="VisionCore data folder: SRC/<session>/datasets/<type>.dset"
    )
    parser.add_argument(
        "dst", metavar="DST", help="where the sessions go: DST/<session>/ (raw-session layout)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="list what would be written; write nothing"
    )
    parser.add_argument(
        "--allow-unsafe-pickle",
        action="store_true",
        help="load .dset files that need arbitrary unpickling (runs code: trusted files only)",
    )
    parser.add_argument(
        "--types", nargs="+", default=None, help="stimulus types to import (default: all found)"
    )
    parser.add_argument(
        "--sessions", nargs="+", default=None, help="sessions to import (default: all found)"
    )
    parser.add_argument(
        "--source_rate",
        type=float,
        default=DEFAULT_SOURCE_RATE,
        help="bins per second of the recordings (checked against t_bins)",
    )
    parser.add_argument("--replace", action="store_true", help="overwrite sessions already in DST")
    parser.add_argument("--debug", action="store_true", help="print tracebacks on errors")


def plan_import(
    src: Path, dst: Path, types: list[str] | None, sessions: list[str] | None
) -> list[PlannedSession]:
    """The sessions and files an import would read, checked for presence only."""
    if not src.is_dir():
        raise DataError(src, "not a folder (expected SRC/<session>/datasets/<type>.dset)")
    found = sorted(p.parent.parent.name for p in src.glob("*/datasets/*.dset"))
    names = sessions if sessions is not None else sorted(set(found))
    if not names:
        raise DataError(src, "holds no VisionCore session (<session>/datasets/<type>.dset)")
    planned = []
    for name in names:
        datasets = src / name / "datasets"
        if not datasets.is_dir():
            raise DataError(datasets, f"missing (session {name!r} named by --sessions)")
        available = sorted(p.stem for p in datasets.glob("*.dset"))
        wanted = types if types is not None else available
        for stim_type in wanted:
            if stim_type not in available:
                have = ", ".join(available) or "none"
                raise DataError(datasets / f"{stim_type}.dset", f"missing (has: {have})")
        if not wanted:
            raise DataError(datasets, "holds no .dset file")
        files = {t: datasets / f"{t}.dset" for t in wanted}
        planned.append(PlannedSession(name, src / name, dst / name, files))
    return planned


def read_session(
    planned: PlannedSession, source_rate: float, allow_unsafe_pickle: bool
) -> tuple[RawSession, list[str]]:
    """A planned session's files as a :class:`RawSession` (arrays still memory-mapped where
    the files allow), and one line per conversion or choice made on the way."""
    loaded = {t: load_dset(f, allow_unsafe_pickle) for t, f in planned.files.items()}
    first_type, first_file = next(iter(planned.files.items()))
    robs = loaded[first_type]["covariates"].get("robs")
    n_units = int(robs.shape[1]) if robs is not None and robs.ndim == 2 else 0
    if n_units == 0:
        shape = "missing" if robs is None else f"shape {robs.shape}"
        raise DataError(first_file, f"covariates.robs: {shape}, expected (T, N) with N >= 1")
    for stim_type, file in planned.files.items():
        other = loaded[stim_type]["covariates"].get("robs")
        if other is not None and other.ndim == 2 and other.shape[1] != n_units:
            raise DataError(file, f"covariates.robs: {other.shape[1]} units, {first_file.name}"
                            f" has {n_units} (one session, one set of units)")  # fmt: skip
    metadata = {planned.files[t]: loaded[t]["metadata"] for t in planned.files}
    cids, times, pct, origin = load_units(planned.source, n_units, metadata)
    notes = [f"cids: {n_units} units from {origin}"]
    notes.append(f"missing_pct: {len(times)} samples" if times is not None else "missing_pct: none")
    recordings = {}
    for stim_type, file in planned.files.items():
        recording, converted = convert_recording(
            file, stim_type, loaded[stim_type], source_rate, n_units
        )
        recordings[stim_type] = recording
        notes += [f"{stim_type}: {line}" for line in converted]
    missing = MissingPct(times, pct) if times is not None else None
    info = {"imported_from": str(planned.source)}
    return RawSession(planned.name, cids, recordings, missing, info), notes


def describe(planned: PlannedSession, session: RawSession, notes: list[str]) -> list[str]:
    """What importing ``session`` writes: one line per session, type and conversion."""
    lines = [f"{planned.name} -> {planned.destination} ({session.cids.size} units)"]
    total = 0
    for stim_type, recording in session.recordings.items():
        arrays = ", ".join(
            f"{key} {tuple(a.shape)} {a.dtype}" for key, a in recording.covariates.items()
        )
        size = sum(a.nbytes for a in recording.covariates.values())
        total += size
        lines.append(
            f"  {stim_type}: {recording.n_bins} bins at {recording.source_rate:g} Hz,"
            f" {_bytes(size)}: {arrays}"
        )
    lines += [f"  {note}" for note in notes]
    lines.append(f"  total {_bytes(total)}")
    return lines


def _bytes(size: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size} TB"


def run_import(args: argparse.Namespace, out=print) -> list[Path]:
    """The ``import-visioncore`` command: plan, read and check every session, then write.

    Every session is checked before the first is written (a second pass reads the files
    again; they are memory-mapped, so holding every session at once is what would cost),
    so a bad file anywhere stops the import with nothing written.
    """
    src, dst = Path(args.src), Path(args.dst)
    plan = plan_import(src, dst, args.types, args.sessions)
    if not args.replace and not args.dry_run:
        for planned in plan:  # before reading gigabytes: the cheapest error first
            if is_raw_session(planned.destination):
                raise DataError(planned.destination, "holds a session already; pass --replace")
    for planned in plan:
        session, notes = read_session(planned, args.source_rate, args.allow_unsafe_pickle)
        if args.dry_run:
            for line in describe(planned, session, notes):
                out(line)
        del session
    if args.dry_run:
        out(f"dry run: {len(plan)} session(s) checked, nothing written")
        return []
    written = []
    for planned in plan:
        session, notes = read_session(planned, args.source_rate, args.allow_unsafe_pickle)
        source = {
            "importer": "corejob-train import-visioncore",
            "from": str(planned.source),
            "files": {t: str(f) for t, f in planned.files.items()},
            "conversions": notes,
        }
        written.append(write_raw_session(session, planned.destination, args.replace, source))
        out(f"{planned.name} -> {planned.destination}: {', '.join(session.recordings)}")
    return written


def convert_recording(
    file: Path, stim_type: str, loaded: dict[str, Any], source_rate: float, n_units: int
) -> tuple[RawRecording, list[str]]:
    """A loaded ``.dset`` as a :class:`RawRecording`, and the conversions made (one line each)."""
    covariates, notes = {}, []
    for key in REQUIRED_COVARIATES:
        if key not in loaded["covariates"]:
            raise DataError(file, f"covariates.{key}: missing (a VisionCore recording has"
                            f" {', '.join(REQUIRED_COVARIATES)})")  # fmt: skip
    for key, array in loaded["covariates"].items():
        covariates[key], note = _converted(file, key, array)
        if note:
            notes.append(f"{key}: {note}")
    meta, dropped = _json_metadata(loaded["metadata"])
    if dropped:
        meta["dropped_metadata"] = dropped
    recording = RawRecording(stim_type, source_rate, covariates, meta)
    for problem in recording_problems(recording, n_units):
        raise DataError(file, f"covariates.{problem}")
    _check_trials_and_clock(file, covariates, source_rate)
    return recording, notes


def _converted(file: Path, key: str, array: np.ndarray) -> tuple[np.ndarray, str]:
    """The array in the recorded dtype for ``key`` and what was done, or a DataError."""
    kind = REQUIRED_COVARIATES.get(key, ("", ()))[0]
    where = f"covariates.{key}"
    if key == "stim" and array.dtype != np.uint8:
        raise DataError(file, f"{where}: dtype {array.dtype}; expected uint8 pixels (T, H, W)")
    if key in ("robs", "rates") and array.dtype != np.float32:
        return _exactly(file, where, array, np.float32), f"{array.dtype} -> float32 (exact)"
    if key == "eyepos" and array.dtype != np.float32:
        if array.dtype.kind != "f":
            raise DataError(file, f"{where}: dtype {array.dtype}; expected float degrees")
        return array.astype(np.float32), f"{array.dtype} -> float32"
    if kind == "b" and array.dtype != np.bool_:
        if array.dtype.kind not in "fiu":
            raise DataError(file, f"{where}: dtype {array.dtype}; expected bool")
        return np.asarray(array) > 0, f"{array.dtype} -> bool (value > 0, as VisionCore)"
    if kind == "i" and array.dtype != np.int64:
        return _exactly(file, where, array, np.int64), f"{array.dtype} -> int64 (exact)"
    if key == "t_bins" and array.dtype != np.float64:
        if array.dtype.kind != "f":
            raise DataError(file, f"{where}: dtype {array.dtype}; expected float seconds")
        return array.astype(np.float64), f"{array.dtype} -> float64"
    return array, ""


def _exactly(file: Path, where: str, array: np.ndarray, dtype: type) -> np.ndarray:
    """``array`` as ``dtype`` when every value survives the round trip, else a DataError."""
    if array.dtype.kind not in "fiub":
        raise DataError(file, f"{where}: dtype {array.dtype} is not numeric")
    converted = np.asarray(array).astype(dtype)
    with np.errstate(invalid="ignore"):
        exact = np.array_equal(converted.astype(array.dtype), array, equal_nan=dtype != np.int64)
    if not exact:
        raise DataError(file, f"{where}: {array.dtype} values do not fit {np.dtype(dtype)}")
    return converted


def _check_trials_and_clock(file: Path, covariates: dict[str, np.ndarray], rate: float) -> None:
    """Trials contiguous; the ``t_bins`` step within trials is one bin at ``rate``."""
    trials, t_bins = covariates["trial_inds"], covariates["t_bins"]
    starts = np.r_[True, trials[1:] != trials[:-1]] if trials.size else np.zeros(0, bool)
    runs = trials[starts]
    if np.unique(runs).size != runs.size:
        raise DataError(file, "covariates.trial_inds: a trial appears in two separate runs")
    within = np.diff(t_bins)[~starts[1:]] if t_bins.size > 1 else np.zeros(0)
    if within.size:
        step = float(np.median(within))
        if not step > 0 or abs(step * rate - 1.0) > _RATE_TOLERANCE:
            found = f"{1 / step:.4g} Hz" if step > 0 else "not increasing"
            raise DataError(file, f"covariates.t_bins: median step {step:.6g} s ({found}), but"
                            f" the source rate is {rate:g} Hz; pass --source_rate")  # fmt: skip


def _json_metadata(metadata: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The JSON-able part of a ``.dset``'s metadata; names of the keys left out."""
    kept, dropped = {}, []
    for key, value in metadata.items():
        plain = _plain(value)
        if plain is _UNSUPPORTED:
            dropped.append(str(key))
        else:
            kept[str(key)] = plain
    return kept, dropped


_UNSUPPORTED = object()
_MAX_METADATA_ITEMS = 10_000  # larger arrays are data, not metadata: left out


def _plain(value: Any) -> Any:
    if type(value).__module__.startswith("torch") and hasattr(value, "numpy"):
        value = value.detach().cpu().numpy()  # a tensor in the metadata
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray) and value.size <= _MAX_METADATA_ITEMS:
        return value.tolist() if value.dtype.kind in "biuf" else _UNSUPPORTED
    if isinstance(value, list | tuple) and len(value) <= _MAX_METADATA_ITEMS:
        items = [_plain(v) for v in value]
        return _UNSUPPORTED if any(v is _UNSUPPORTED for v in items) else items
    if isinstance(value, dict):
        items = {str(k): _plain(v) for k, v in value.items()}
        return _UNSUPPORTED if any(v is _UNSUPPORTED for v in items.values()) else items
    return _UNSUPPORTED
