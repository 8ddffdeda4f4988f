"""The interface every backend implements, so that the CLI and sweeps are backend-agnostic.

Everything the CLI or the sweep loop asks of a backend is a method here; a capability a
backend lacks has an explicit neutral answer (``node_gpus() -> None``: unknown), never a
missing attribute probed with ``getattr``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from corejob.job.state import JobSummary

Job = dict[str, Any]


@dataclass(frozen=True)
class SubmitOutcome:
    """Result of submitting a job: ``created`` is False when an identical job already existed."""

    name: str
    created: bool
    summary: JobSummary
    #: What happened besides the job, in one line each (a config file shipped with it).
    notes: tuple[str, ...] = ()


class JobTracker(Protocol):
    """A context manager that keeps a current view of the jobs matching one selector."""

    def __enter__(self) -> JobTracker: ...

    def __exit__(self, *exc: object) -> None: ...

    def snapshot(self) -> dict[str, Job]:
        """``name -> job`` as last observed."""
        ...

    def wait_for_change(self, timeout_s: float) -> set[str]:
        """Block until a job changed or ``timeout_s`` passed; the names seen changing."""
        ...


class Backend(Protocol):
    """Operations on the job objects rendered by the chart (``corejob.job.render``)."""

    name: str
    #: Where jobs live on a cluster; None for the backends that run on this machine.
    namespace: str | None

    def submit(self, job: Job) -> SubmitOutcome:
        """Create the job unless one with the same name exists (then report that one)."""
        ...

    def get(self, name: str) -> Job | None:
        """The job object with an operator-shaped ``status``, or None when absent."""
        ...

    def list(self, selector: dict[str, str] | None = None) -> list[Job]:
        """Job objects whose labels match every ``selector`` item."""
        ...

    def logs(
        self,
        name: str,
        replica: str | None = None,
        all_replicas: bool = False,
        follow: bool = False,
        since_seconds: int | None = None,
        tail: int | None = None,
    ) -> Iterator[str]:
        """Log lines of the master (default), one replica ("worker-1") or all, prefixed;
        ``tail``: only the last that many lines of each replica's log (then follow)."""
        ...

    def cancel(self, name: str) -> bool:
        """Delete/stop the job and everything it runs; False when it did not exist."""
        ...

    def result(self, name: str) -> dict[str, Any] | None:
        """The trainer's final result object (``COREJOB_RESULT`` line), None if not yet."""
        ...

    def keep_result(self, job: Job, result: dict[str, Any] | None) -> None:
        """Record a finished ``job`` (and its result, None for a failed run) in the
        backend's results ledger, which outlives the job (``cancel``, a cluster's TTL)."""
        ...

    def recorded_results(
        self, selector: dict[str, str] | None = None
    ) -> list[tuple[Job, dict[str, Any] | None]]:
        """(job, result) of every recorded run whose job labels match ``selector``,
        the job still live or not."""
        ...

    def explain(self, name: str) -> list[str]:
        """Plain-words reasons why a job is not running yet (pending pods, events)."""
        ...

    def track(self, selector: dict[str, str], poll_s: float = 2.0) -> JobTracker:
        """A tracker of the jobs matching ``selector`` (a watch where the backend has one)."""
        ...

    def exit_codes(self, name: str) -> list[int]:
        """Non-zero exit codes of the job's trainer containers (current or last run)."""
        ...

    def node_gpus(self) -> list[int] | None:
        """Allocatable GPUs per node, or None when unknown (no nodes to ask, or not allowed)."""
        ...

    def job_flavor(self, configured: str | None) -> str:
        """The chart's ``apiFlavor`` to render jobs as (``pytorchjob``/``trainjob``):
        ``configured`` when given, else what this backend runs (a cluster: its CRDs)."""
        ...


class PollingTracker:
    """A :class:`JobTracker` for backends without watches: lists every ``interval_s``."""

    def __init__(self, backend: Backend, selector: dict[str, str], interval_s: float = 2.0):
        self.backend = backend
        self.selector = selector
        self.interval_s = interval_s

    def __enter__(self) -> PollingTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def snapshot(self) -> dict[str, Job]:
        return {job["metadata"]["name"]: job for job in self.backend.list(self.selector)}

    def wait_for_change(self, timeout_s: float) -> set[str]:
        time.sleep(min(timeout_s, self.interval_s))
        return set()
