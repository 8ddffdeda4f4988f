"""After a job is rendered: rerun a failed one, follow its log, wait for it to end.

Backend-agnostic (the ``Backend`` protocol only); ``corejob submit`` is the caller.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from corejob.backends.base import Backend, SubmitOutcome
from corejob.errors import ExitCode, JobFailedError, JobNotFoundError, PendingTimeoutError
from corejob.job.flavors.replicas import master_pod_spec
from corejob.job.spec import runs_volume
from corejob.job.state import LABEL_CONFIG_HASH, JobState, summarize
from corejob.results.status_table import is_stuck


def rerun_failed(backend: Backend, job: dict[str, Any], outcome: SubmitOutcome) -> SubmitOutcome:
    """Delete a Failed job and create it again, so that it resumes from its checkpoints.

    Re-checked first: another shell may already be running it again.
    """
    current = backend.get(outcome.name)
    failed = summarize(current) if current is not None else None
    if failed is None or failed.state != JobState.FAILED:
        return outcome
    how = (
        "resumes from its checkpoints"
        if keeps_runs(backend, job)
        else ("starts over: /runs was an emptyDir")
    )
    print(f"job {outcome.name} had failed ({failed.message or failed.reason}); "
          f"running it again ({how})")  # fmt: skip
    backend.cancel(outcome.name)
    return backend.submit(job)  # waits while a cluster still deletes the old one


def keeps_runs(backend: Backend, job: dict[str, Any]) -> bool:
    """Whether ``/runs`` outlives the job: local backends keep every volume, a cluster
    only claims and host paths."""
    if backend.namespace is None:
        return True
    volume = runs_volume(master_pod_spec(job))
    return "persistentVolumeClaim" in volume or "hostPath" in volume


def follow_logs(backend: Backend, name: str, attempts: int = 240) -> None:
    """Stream the master's log once it has a pod (pods appear after scheduling)."""
    for _ in range(attempts):
        try:
            for line in backend.logs(name, follow=True):
                print(line, flush=True)
            return
        except JobNotFoundError:
            time.sleep(0.5)


@contextmanager
def announce_on_interrupt(name: str) -> Iterator[None]:
    """Ctrl-C stops waiting, not the job: say so, and how to stop it."""
    try:
        yield
    except KeyboardInterrupt:
        print(f"\nstopped waiting; job {name} keeps running (`corejob status {name}`, "
              f"`corejob cancel {name}`)", file=sys.stderr)  # fmt: skip
        raise


def wait_for(backend: Backend, job: dict[str, Any], pending_timeout: float | None) -> int:
    """Until the job ends, printing each newer progress record the trainer logged."""
    from corejob.results.status_table import RUNNING_STATES, ProgressFeed, print_progress

    name = job["metadata"]["name"]
    selector = {LABEL_CONFIG_HASH: job["metadata"]["labels"][LABEL_CONFIG_HASH]}
    feed = ProgressFeed(backend)  # reads the log at most every PROGRESS_POLL_S
    with backend.track(selector) as tracker, announce_on_interrupt(name):
        while True:
            current = tracker.snapshot().get(name) or backend.get(name)
            if current is None:
                raise JobNotFoundError(f"job {name} disappeared (cancelled?)")
            summary = summarize(current)
            if summary.state.finished:
                break
            if is_stuck(summary, pending_timeout):
                reasons = "; ".join(backend.explain(name)) or "no reason reported"
                raise PendingTimeoutError(f"job {name} is still pending: {reasons}")
            if summary.state in RUNNING_STATES:
                print_progress(feed.poll({name: current}))
            tracker.wait_for_change(min(5.0, feed.interval_s))
    print_progress(feed.poll({name: current}, force=True))
    print(f"job {name}: {summary.state} {summary.reason} {summary.message}".rstrip())
    result = backend.result(name) if summary.state == JobState.SUCCEEDED else None
    backend.keep_result(current, result)  # its row outlives the job (cancel, TTL)
    if summary.state == JobState.FAILED:
        raise JobFailedError(f"job {name} failed: {summary.reason}: {summary.message}")
    return ExitCode.OK
