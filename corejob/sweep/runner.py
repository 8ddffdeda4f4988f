"""The sweep loop: observe the ledger, apply the plan from :mod:`corejob.sweep.plan`, wait.

Backend-agnostic: it uses the Backend protocol only — ``track(selector)`` for the ledger
(a watch on Kubernetes, polling elsewhere) and ``exit_codes(name)`` to judge whether a
failure is retryable. Every job is rendered and validated before the first one is
created, and an interrupt reports what exists.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from corejob.backends.base import Backend
from corejob.errors import CorejobError, JobFailedError
from corejob.job.state import LABEL_SWEEP, JobState, state_from_conditions, summarize
from corejob.sweep.plan import ActionKind, Cell, CellView, failure_retryable, outcome_counts, plan

Job = dict[str, Any]
DELETE_WAIT_S = 120
# A job we created but the watch has not shown after this long is asked for directly:
# if it is gone (deleted before the watch saw it), the cell is over, not "in flight".
UNSEEN_GRACE_S = 30.0


@dataclass
class SweepRun:
    """State of one invocation: desired jobs per cell and what this run did."""

    sweep: str
    jobs: dict[Cell, Job]
    max_parallel: int
    retries: int
    attempts: dict[Cell, int] = field(default_factory=dict)
    failed_at_start: set[Cell] = field(default_factory=set)
    created: list[str] = field(default_factory=list)
    # The watch lags behind our own writes: names we created but have not observed yet,
    # and uids of failed jobs we already replaced, must not be read as missing/failed.
    seen: set[str] = field(default_factory=set)
    replaced_uids: set[str] = field(default_factory=set)
    retryable_by_uid: dict[str, bool] = field(default_factory=dict)  # pods listed once per job
    submitted_at: dict[str, float] = field(default_factory=dict)  # name -> time.monotonic()

    def name(self, cell: Cell) -> str:
        return self.jobs[cell]["metadata"]["name"]


def cell_views(run: SweepRun, observed: dict[str, Job], backend: Backend) -> list[CellView]:
    views = []
    for cell in run.jobs:
        name = run.name(cell)
        job = observed.get(name)
        if job is not None and job["metadata"].get("uid") in run.replaced_uids:
            job = None
        if job is not None:
            run.seen.add(name)
        state = summarize(job).state if job else None
        if job is None and run.attempts.get(cell) and name not in run.seen:
            if vanished_unseen(run, backend, name):
                run.seen.add(name)  # missing from now on: the plan leaves it alone
            else:
                state = JobState.UNKNOWN  # created by us, not observed yet: in flight
        retryable = False
        if state == JobState.FAILED and job is not None:
            uid = job["metadata"].get("uid") or name
            if uid not in run.retryable_by_uid:
                run.retryable_by_uid[uid] = job_failure_retryable(backend, job)
            retryable = run.retryable_by_uid[uid]
        views.append(
            CellView(
                cell, name, state, retryable, run.attempts.get(cell, 0),
                cell in run.failed_at_start,
            )
        )  # fmt: skip
    return views


def vanished_unseen(run: SweepRun, backend: Backend, name: str) -> bool:
    """True when a job we created was never observed and, asked directly, no longer exists
    (deleted before the watch saw it: without this the sweep would wait for it forever)."""
    since = run.submitted_at.get(name)
    if since is None or time.monotonic() - since < UNSEEN_GRACE_S:
        return False
    return backend.get(name) is None


def job_failure_retryable(backend: Backend, job: Job) -> bool:
    _, reason, message = state_from_conditions(job.get("status", {}).get("conditions"))
    return failure_retryable(reason, message, backend.exit_codes(job["metadata"]["name"]))


def wait_until_gone(backend: Backend, name: str, timeout_s: float = DELETE_WAIT_S) -> None:
    """Deletion is asynchronous (pods first); the name is free only once the job is gone."""
    deadline = time.monotonic() + timeout_s
    while backend.get(name) is not None:
        if time.monotonic() > deadline:
            raise JobFailedError(f"job {name} is still being deleted after {timeout_s:.0f}s")
        time.sleep(0.3)


def execute(
    run: SweepRun, backend: Backend, views: list[CellView], observed: dict[str, Job], out: TextIO
) -> None:
    for action in plan(views, run.max_parallel, run.retries).actions:
        if action.kind == ActionKind.RETRY:
            print(f"  retry   {action.name} ({action.cell}), attempt {action.attempt}", file=out)
            old_uid = (observed.get(action.name) or {}).get("metadata", {}).get("uid")
            if old_uid:
                run.replaced_uids.add(old_uid)
            run.seen.discard(action.name)
            backend.cancel(action.name)
            wait_until_gone(backend, action.name)
        else:
            print(f"  submit  {action.name} ({action.cell})", file=out)
        backend.submit(run.jobs[action.cell])
        run.attempts[action.cell] = action.attempt
        run.submitted_at[action.name] = time.monotonic()
        run.created.append(action.name)


def progress_line(
    run: SweepRun, views: list[CellView], progress: Mapping[str, str] | None = None
) -> str:
    """The counts line; with ``progress`` (job name → its progress text), one indented
    line per cell that has one, so a long sweep shows how far each running job is."""
    counts = outcome_counts(views)
    parts = ", ".join(f"{count} {label}" for label, count in counts.items())
    shown = progress or {}
    cells = [f"  {view.name}: {shown[view.name]}" for view in views if view.name in shown]
    return "\n".join([f"[{run.sweep}] {len(views)} cells: {parts}", *cells])


def run_sweep(
    run: SweepRun,
    backend: Backend,
    poll_s: float = 2.0,
    out: TextIO | None = None,
    on_progress: Callable[[list[CellView]], None] | None = None,
) -> list[CellView]:
    """Drive the sweep to completion; returns the final views. Ctrl-C stops submitting
    (jobs keep running on the backend) and re-raises after reporting what was created."""
    out = out or sys.stderr  # looked up now: tests and callers may have replaced it
    selector = {LABEL_SWEEP: run.sweep}
    last_line = ""
    with backend.track(selector, poll_s) as tracker:
        observed = tracker.snapshot()
        run.failed_at_start = {
            cell for cell in run.jobs
            if (job := observed.get(run.name(cell))) and summarize(job).state == JobState.FAILED
        }  # fmt: skip
        try:
            while True:
                observed = tracker.snapshot()
                views = cell_views(run, observed, backend)
                execute(run, backend, views, observed, out)
                views = cell_views(run, tracker.snapshot(), backend)
                line = progress_line(run, views)
                if line != last_line:
                    print(line, file=out, flush=True)
                    last_line = line
                if on_progress:
                    on_progress(views)
                if plan(views, run.max_parallel, run.retries).done:
                    return views
                tracker.wait_for_change(poll_s)
        except (KeyboardInterrupt, CorejobError) as error:
            why = "interrupted" if isinstance(error, KeyboardInterrupt) else "stopped by an error"
            created = ", ".join(run.created) or "nothing"
            print(
                f"\n{why}: this run created {created}; those jobs keep running. "
                "Rerun the same command to continue the sweep (it submits only what is "
                f"missing or failed), or `corejob cancel --sweep {run.sweep}`.",
                file=out,
            )
            raise
