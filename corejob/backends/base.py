"""The interface every backend implements, so that the CLI and sweeps are backend-agnostic."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from corejob.jobstate import JobSummary


class BackendError(Exception):
    """A user-facing failure of a backend; ``str()`` is one line, ``exit_code`` is for the CLI."""

    exit_code = 1


@dataclass(frozen=True)
class SubmitOutcome:
    """Result of submitting a job: ``created`` is False when an identical job already existed."""

    name: str
    created: bool
    summary: JobSummary


class Backend(Protocol):
    """Operations on PyTorchJob objects rendered by the chart (``corejob.render``)."""

    name: str

    def submit(self, job: dict[str, Any]) -> SubmitOutcome:
        """Create the job unless one with the same name exists (then report that one)."""
        ...

    def get(self, name: str) -> dict[str, Any] | None:
        """The job object with an operator-shaped ``status``, or None when absent."""
        ...

    def list(self, selector: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """Job objects whose labels match every ``selector`` item."""
        ...

    def logs(
        self,
        name: str,
        replica: str | None = None,
        all_replicas: bool = False,
        follow: bool = False,
        since_seconds: int | None = None,
    ) -> Iterator[str]:
        """Log lines of the master (default), one replica ("worker-1") or all, prefixed."""
        ...

    def cancel(self, name: str) -> bool:
        """Delete/stop the job and everything it runs; False when it did not exist."""
        ...

    def result(self, name: str) -> dict[str, Any] | None:
        """The trainer's final result object (``COREJOB_RESULT`` line), None if not yet."""
        ...

    def explain(self, name: str) -> list[str]:
        """Plain-words reasons why a job is not running yet (pending pods, events)."""
        ...
