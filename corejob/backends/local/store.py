"""Where a local job lives on disk, so that any later CLI invocation can find it.

``<runs_dir>/<job>/``:
  ``job.json``         the PyTorchJob object with its operator-shaped ``status``
  ``supervisor.json``  the supervisor's pid and every replica's pid (for cancel and liveness)
  ``logs/<replica>.log``  each replica's stdout+stderr (``master-0.log``, ``worker-0.log``)
  ``volumes/<name>/``  the pod's emptyDir volumes (``/runs``, ``/data``, ``/tmp`` ...)
  ``configmaps/<name>/<key>``  the ConfigMaps the job owns (its configMap volumes' files)
  ``supervisor.log``   the supervisor's own messages
  ``supervisor.failure``  why the supervisor failed (space reserved at its start)
  ``logs.previous/``   the logs of the run before the last resubmission
``<runs_dir>/_claims/<claim>/`` backs persistentVolumeClaims shared between jobs.
``<runs_dir>/_results/<job>.json`` the results ledger: a finished job's result, kept after
``cancel`` forgets the job (``corejob results`` merges it with the live jobs).

Only the supervisor writes a running job's files; every write is atomic (temp file +
rename) so readers never see half a JSON document. A failed write names its file, so the
supervisor can say what it could not write.
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
from typing import Any

JOB_FILE = "job.json"
SUPERVISOR_FILE = "supervisor.json"
FAILURE_FILE = "supervisor.failure"
# Big enough for a reason with a long path; reserved up front (see write_failure_note).
FAILURE_NOTE_BYTES = 4096
LOG_DIR = "logs"
PREVIOUS_LOG_DIR = "logs.previous"
CLAIMS_DIR = "_claims"
CONFIG_MAPS_DIR = "configmaps"
RESULTS_DIR = "_results"
UNKNOWN_START = "?"
_HAS_PROC = Path("/proc/self/stat").exists()


class StoreWriteError(OSError):
    """A store file could not be written; ``filename`` is the file, not its temp copy."""


def atomic_write_json(path: Path, data: Any) -> None:
    """Write ``data`` to ``path`` atomically; an OSError names ``path`` (not the temp file)."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException as error:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        if isinstance(error, OSError) and error.errno is not None:
            # A full disk fails at the buffered write with no file name at all.
            raise StoreWriteError(error.errno, error.strerror, str(path)) from error
        raise


def read_json(path: Path) -> Any | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (guards against pid reuse); None if gone or a zombie.

    Without ``/proc`` (macOS) there is no start time: a live pid reads as ``"?"``, which
    :func:`process_alive` accepts for any recorded time.
    """
    if not _HAS_PROC:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return UNKNOWN_START
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    state, start = fields[0], fields[19]
    return None if state in ("Z", "X") else start


def process_alive(pid: int | None, start_time: str | None) -> bool:
    """True when ``pid`` still runs and is the same process that was recorded."""
    if not pid:
        return False
    current = process_start_time(pid)
    if current is None:
        return False
    return start_time is None or UNKNOWN_START in (current, start_time) or current == start_time


class JobStore:
    """The runs directory as a table of jobs keyed by name."""

    def __init__(self, runs_dir: Path) -> None:
        self.runs_dir = Path(runs_dir)

    def job_dir(self, name: str) -> Path:
        return self.runs_dir / name

    @property
    def claims_dir(self) -> Path:
        return self.runs_dir / CLAIMS_DIR

    def write_config_map(self, name: str, config_map: str, files: dict[str, str]) -> Path:
        """Copy a ConfigMap job ``name`` owns into its directory as the files a configMap
        volume shows a pod (path → text), replacing an older copy; the directory."""
        directory = self.job_dir(name) / CONFIG_MAPS_DIR / config_map
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        for path, text in sorted(files.items()):
            (directory / path).parent.mkdir(parents=True, exist_ok=True)
            (directory / path).write_text(text, encoding="utf-8")
        return directory

    def log_path(self, name: str, replica_id: str) -> Path:
        return self.job_dir(name) / LOG_DIR / f"{replica_id}.log"

    def log_paths(self, name: str) -> list[Path]:
        """Existing replica logs, master first."""
        paths = sorted((self.job_dir(name) / LOG_DIR).glob("*.log"))
        return sorted(paths, key=lambda p: (not p.name.startswith("master"), p.name))

    def read_job(self, name: str) -> dict[str, Any] | None:
        return read_json(self.job_dir(name) / JOB_FILE)

    def write_job(self, name: str, job: dict[str, Any]) -> None:
        atomic_write_json(self.job_dir(name) / JOB_FILE, job)

    @property
    def results_dir(self) -> Path:
        return self.runs_dir / RESULTS_DIR

    def read_result_record(self, name: str) -> dict[str, Any] | None:
        """The ledger's record of job ``name`` (None: none, or unreadable)."""
        try:
            record = read_json(self.results_dir / f"{name}.json")
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def write_result_record(self, name: str, record: dict[str, Any]) -> None:
        atomic_write_json(self.results_dir / f"{name}.json", record)

    def result_records(self) -> list[dict[str, Any]]:
        """Every readable ledger record, by job name (a damaged file is skipped, not fatal:
        the ledger is a convenience copy, the job's logs stay the source)."""
        if not self.results_dir.is_dir():
            return []
        records = (self.read_result_record(p.stem) for p in sorted(self.results_dir.glob("*.json")))
        return [record for record in records if record is not None]

    def read_supervisor(self, name: str) -> dict[str, Any] | None:
        return read_json(self.job_dir(name) / SUPERVISOR_FILE)

    def write_supervisor(self, name: str, record: dict[str, Any]) -> None:
        atomic_write_json(self.job_dir(name) / SUPERVISOR_FILE, record)

    def names(self) -> list[str]:
        if not self.runs_dir.is_dir():
            return []
        return sorted(p.parent.name for p in self.runs_dir.glob(f"*/{JOB_FILE}"))

    @contextlib.contextmanager
    def submit_lock(self, name: str, wait: bool = True) -> Iterator[bool]:
        """Serializes changes to one job's record (submit, cancel, reconciling a dead
        supervisor) across processes; yields False when busy and ``wait`` is False."""
        self.job_dir(name).mkdir(parents=True, exist_ok=True)
        with open(self.job_dir(name) / ".submit.lock", "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True

    def reset_logs(self, name: str) -> None:
        """A new job with an old name starts with empty logs (volumes are kept, like a PVC).

        The previous run's logs move to ``logs.previous/``: a job resubmitted because it
        failed would otherwise erase the evidence of why.
        """
        logs, previous = self.job_dir(name) / LOG_DIR, self.job_dir(name) / PREVIOUS_LOG_DIR
        if logs.is_dir() and any(logs.iterdir()):
            shutil.rmtree(previous, ignore_errors=True)
            logs.rename(previous)
        shutil.rmtree(logs, ignore_errors=True)
        logs.mkdir(parents=True, exist_ok=True)

    def remove_record(self, name: str) -> None:
        """Forget the job (``cancel``); logs and volumes stay for inspection and resuming."""
        for file_name in (JOB_FILE, SUPERVISOR_FILE, FAILURE_FILE):
            with contextlib.suppress(FileNotFoundError):
                (self.job_dir(name) / file_name).unlink()

    # -- the supervisor's failure note ---------------------------------------------------
    def reserve_failure_note(self, name: str) -> None:
        """Allocate the note's space now, while the disk has room (blank = no failure)."""
        with open(self.job_dir(name) / FAILURE_FILE, "wb") as handle:
            handle.write(b" " * FAILURE_NOTE_BYTES)

    def write_failure_note(self, name: str, pid: int, reason: str) -> None:
        """Why supervisor ``pid`` failed, written over the reserved blanks in place.

        Overwriting allocated bytes needs no free space, so this works on the full disk
        that made the supervisor fail (a new file or an append would not).
        """
        note = {"pid": pid, "reason": reason}
        data = json.dumps(note).encode()
        if len(data) >= FAILURE_NOTE_BYTES:
            cut = len(data) - FAILURE_NOTE_BYTES + 8
            data = json.dumps({**note, "reason": reason[:-cut] + "..."}).encode()
        fd = os.open(self.job_dir(name) / FAILURE_FILE, os.O_WRONLY)
        try:
            os.pwrite(fd, data.ljust(FAILURE_NOTE_BYTES), 0)
        finally:
            os.close(fd)

    def read_failure_note(self, name: str) -> dict[str, Any] | None:
        """``{"pid": ..., "reason": ...}`` once a supervisor recorded its failure, else None."""
        try:
            text = (self.job_dir(name) / FAILURE_FILE).read_text().strip()
        except FileNotFoundError:
            return None
        try:
            note = json.loads(text) if text else None
        except ValueError:
            return None
        return note if isinstance(note, dict) else None
