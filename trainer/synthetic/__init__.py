"""Synthetic ground-truth V1 sessions: generated on demand, stored as memory-mappable .npy.

Raw sessions (what a lab records, at 240 Hz: ``trainer.synthetic.raw``) come from
``simulate_raw_session(spec)`` and ``ensure_raw_session(spec, data_root)``.

``generate_dataset(config)`` makes sure every session of a dataset config exists under
``config.data_root`` and is sound (used by ``corejob-train generate`` and lazily by the
data module). A damaged session is regenerated, never reported as an error: its arrays
are a deterministic function of the config, so the regenerated copy is the original.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from trainer.contract.errors import DataError, StorageError, storage_error
from trainer.synthetic.raw import RawSessionSpec, ensure_raw_session, simulate_raw_session
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


__all__ = [
    "RawSessionSpec",
    "ensure_raw_session",
    "generate_dataset",
    "generate_session",
    "session_spec",
    "simulate_raw_session",
]


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
    return generate_spec(
        session_spec(config, session), config.session_dir(session), force, verify, report
    )


def generate_spec(
    spec: SessionSpec,
    path: Path,
    force: bool = False,
    verify: bool = False,
    report: Callable[[str], None] = _announce,
) -> Path:
    """:func:`generate_session` for a resolved spec and folder (what a worker process gets:
    plain data, so it imports the generator only, not the data layer)."""
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
            result = simulate_session(spec)
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
    config: DatasetFields, force: bool = False, verify: bool = False, workers: int | None = None
) -> list[Path]:
    """Generate every missing or damaged session of a loaded dataset config; their folders.

    ``verify`` also compares checksums (reads every byte: for ``corejob-train generate``,
    an explicit offline step; the data module checks headers and sizes only, at every
    start). Takes the loaded config, not a name: loading configs is the data layer's job
    (``trainer.data.config``), and the generator sits below it.

    Sessions are independent, so when several need generating they are generated in
    parallel processes (``workers``; default: as many as CPUs and memory allow, see
    :func:`parallel_workers`). A session whose worker failed is generated once more in this
    process, which raises its error as the one line a serial run would.
    """
    pending = [
        s for s in config.sessions if force or _problems(config.session_dir(s), verify) != []
    ]
    n_workers = parallel_workers(config, pending) if workers is None else workers
    done: set[str] = set()
    if len(pending) > 1 and n_workers > 1:
        done = _generate_in_parallel(config, pending, force, verify, n_workers)
    fresh = {name: False for name in done}  # just written and checked: not again
    return [
        generate_session(
            config, s, force=fresh.get(s.name, force), verify=fresh.get(s.name, verify)
        )
        for s in config.sessions
    ]


# Peak bytes per pixel-frame while simulating a session (float frames, float64 projection).
_PEAK_BYTES_PER_PIXEL_FRAME = 16
# Sessions below this many pixel-frames take well under the ~1.5 s a spawned worker needs
# to start: generated serially (synthetic_tiny: 0.8 M; synthetic_realistic: 246 M).
_PARALLEL_MIN_PIXEL_FRAMES = 20_000_000


def parallel_workers(config: DatasetFields, pending: Sequence[SessionFields]) -> int:
    """Processes for generating ``pending``: CPUs available, bounded by free memory; one
    for small sessions (starting a worker would cost more than it saves)."""
    if len(pending) < 2:
        return 1
    peak = max(_peak_bytes(config, s) for s in pending)
    if peak < _PARALLEL_MIN_PIXEL_FRAMES * _PEAK_BYTES_PER_PIXEL_FRAME:
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        available = peak * (cpus or 1)
    by_memory = max(int(0.7 * available) // max(peak, 1), 1)
    return max(min(cpus or 1, len(pending), by_memory), 1)


def _peak_bytes(config: DatasetFields, session: SessionFields) -> int:
    params = session_spec(config, session).params
    return int(params["n_frames"]) * int(params["image_size"]) ** 2 * _PEAK_BYTES_PER_PIXEL_FRAME


def _generate_in_parallel(
    config: DatasetFields,
    pending: Sequence[SessionFields],
    force: bool,
    verify: bool,
    workers: int,
) -> set[str]:
    """Generate ``pending`` in ``workers`` spawned processes; names of those that succeeded."""
    context = multiprocessing.get_context("spawn")  # no forked copy of a torch process
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = [
            (
                s,
                pool.submit(
                    generate_spec, session_spec(config, s), config.session_dir(s), force, verify
                ),
            )
            for s in pending
        ]
        done: set[str] = set()
        for session, future in futures:
            try:
                future.result()
            except Exception:  # retried serially below, which raises the real error
                continue
            done.add(session.name)
    return done
