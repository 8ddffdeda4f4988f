"""Where a local job lives on disk, so that any later CLI invocation can find it.

``<runs_dir>/<job>/``:
  ``job.json``         the PyTorchJob object with its operator-shaped ``status``
  ``supervisor.json``  the supervisor's pid and every replica's pid (for cancel and liveness)
  ``logs/<replica>.log``  each replica's stdout+stderr (``master-0.log``, ``worker-0.log``)
  ``volumes/<name>/``  the pod's emptyDir volumes (``/runs``, ``/data``, ``/tmp`` ...)
  ``supervisor.log``   the supervisor's own messages
``<runs_dir>/_claims/<claim>/`` backs persistentVolumeClaims shared between jobs.

Only the supervisor writes a running job's files; every write is atomic (temp file +
rename) so readers never see half a JSON document.
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
LOG_DIR = "logs"
CLAIMS_DIR = "_claims"
UNKNOWN_START = "?"
_HAS_PROC = Path("/proc/self/stat").exists()


def atomic_write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
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

    def read_supervisor(self, name: str) -> dict[str, Any] | None:
        return read_json(self.job_dir(name) / SUPERVISOR_FILE)

    def write_supervisor(self, name: str, record: dict[str, Any]) -> None:
        atomic_write_json(self.job_dir(name) / SUPERVISOR_FILE, record)

    def names(self) -> list[str]:
        if not self.runs_dir.is_dir():
            return []
        return sorted(p.parent.name for p in self.runs_dir.glob(f"*/{JOB_FILE}"))

    @contextlib.contextmanager
    def submit_lock(self, name: str) -> Iterator[None]:
        """Serializes check-then-create of one job name across processes."""
        self.job_dir(name).mkdir(parents=True, exist_ok=True)
        with open(self.job_dir(name) / ".submit.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def reset_logs(self, name: str) -> None:
        """A new job with an old name starts with empty logs (volumes are kept, like a PVC)."""
        shutil.rmtree(self.job_dir(name) / LOG_DIR, ignore_errors=True)
        (self.job_dir(name) / LOG_DIR).mkdir(parents=True, exist_ok=True)

    def remove_record(self, name: str) -> None:
        """Forget the job (``cancel``); logs and volumes stay for inspection and resuming."""
        for file_name in (JOB_FILE, SUPERVISOR_FILE):
            with contextlib.suppress(FileNotFoundError):
                (self.job_dir(name) / file_name).unlink()
