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
from corejob.errors import CorejobError, QuotaExceededError
from corejob.job.state import LABEL_SWEEP, JobState, state_from_conditions, summarize
from corejob.sweep.plan import ActionKind, Cell, CellView, failure_retryable, outcome_counts, plan

Job = dict[str, Any]
# How long a retry waits for its failed job's deletion before that cell is given up (the
# other cells go on): a user's --deletion-timeout, else this.
DELETION_TIMEOUT_S = 600.0
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
    deletion_timeout_s: float = DELETION_TIMEOUT_S
    # Cells whose failed job a retry deleted: when the deletion began (create once gone).
    resubmit: dict[Cell, float] = field(default_factory=dict)
    abandoned: dict[Cell, str] = field(default_factory=dict)  # cell -> why it was given up
    blocked: dict[Cell, str] = field(default_factory=dict)  # cell -> why a create waits

    def name(self, cell: Cell) -> str:
        return self.jobs[cell]["metadata"]["name"]


def cell_views(run: SweepRun, observed: dict[str, Job], backend: Backend) -> list[CellView]:
    views = []
    for cell in run.jobs:
        name = run.name(cell)
        job = observed.get(name)
        replaced = job is not None and job["metadata"].get("uid") in run.replaced_uids
        if job is not None and not replaced:
            run.seen.add(name)
        state = summarize(job).state if job else None
        if replaced:
            state = JobState.DELETING  # our retry deleted it: the name is not free yet
        unseen = job is None and run.attempts.get(cell) and name not in run.seen
        if unseen and cell not in run.resubmit:
            if vanished_unseen(run, backend, name):
                run.seen.add(name)  # missing from now on: the plan leaves it alone
            else:
                state = JobState.UNKNOWN  # created by us, not observed yet: in flight
        if cell in run.abandoned:
            state = JobState.FAILED  # its old job outlasted the deletion timeout
        retryable = False
        if state == JobState.FAILED and job is not None and cell not in run.abandoned:
            uid = job["metadata"].get("uid") or name
            if uid not in run.retryable_by_uid:
                run.retryable_by_uid[uid] = job_failure_retryable(backend, job)
            retryable = run.retryable_by_uid[uid]
        views.append(
            CellView(
                cell, name, state, retryable, run.attempts.get(cell, 0),
                cell in run.failed_at_start and cell not in run.abandoned,
                cell in run.resubmit, run.blocked.get(cell, ""),
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


def give_up_slow_deletions(run: SweepRun, views: list[CellView], out: TextIO) -> None:
    """A retry whose old job is still being deleted after the timeout: that cell fails
    (with the reason), the others go on."""
    now = time.monotonic()
    for view in views:
        began = run.resubmit.get(view.cell)
        if began is None or view.state != JobState.DELETING:
            continue
        if now - began > run.deletion_timeout_s:
            del run.resubmit[view.cell]
            run.abandoned[view.cell] = (
                f"job {view.name} is still being deleted after {run.deletion_timeout_s:.0f}s: "
                "not retried (its pods are still terminating; rerun the sweep once it is gone)"
            )
            print(f"  give up {view.name} ({view.cell}): {run.abandoned[view.cell]}", file=out)


def execute(
    run: SweepRun, backend: Backend, views: list[CellView], observed: dict[str, Job], out: TextIO
) -> None:
    for action in plan(views, run.max_parallel, run.retries).actions:
        if action.kind == ActionKind.RETRY:
            # Deletion takes the pods' grace period: the create follows in a later round,
            # once the job is gone, so the other cells are not held up meanwhile.
            print(f"  retry   {action.name} ({action.cell}): deleting the failed job", file=out)
            old_uid = (observed.get(action.name) or {}).get("metadata", {}).get("uid")
            if old_uid:
                run.replaced_uids.add(old_uid)
            run.seen.discard(action.name)
            backend.cancel(action.name)
            run.resubmit[action.cell] = time.monotonic()
            continue
        if not submit(run, backend, action.cell, action.attempt, out):
            return  # no room now: later cells would be refused alike


def submit(run: SweepRun, backend: Backend, cell: Cell, attempt: int, out: TextIO) -> bool:
    """Create the cell's job; False when a quota refused it (the cell stays queued, the
    reason is printed once)."""
    name = run.name(cell)
    try:
        outcome = backend.submit(run.jobs[cell])
    except QuotaExceededError as error:
        if run.blocked.get(cell) != str(error):
            print(f"  queued  {name} ({cell}): {error}; retrying when there is room", file=out)
        run.blocked[cell] = str(error)
        return False
    again = f", attempt {attempt}" if cell in run.resubmit else ""
    print(f"  submit  {name} ({cell}){again}", file=out)
    for note in outcome.notes:  # a config file shipped with the job
        print(f"          {note}", file=out)
    run.blocked.pop(cell, None)
    run.resubmit.pop(cell, None)
    run.seen.discard(name)  # a new object: in flight until the watch shows it
    run.attempts[cell] = attempt
    run.submitted_at[name] = time.monotonic()
    run.created.append(name)
    return True


def stop_message(run: SweepRun, observed: dict[str, Job], why: str) -> str:
    """What this run leaves behind, in words that are true of each job."""
    created = list(dict.fromkeys(run.created))
    deleting = [n for n in created if n in observed and summarize(observed[n]).state
                == JobState.DELETING]  # fmt: skip
    alive = ", ".join(name for name in created if name not in deleting) or "nothing"
    still = f" ({', '.join(deleting)} still being deleted)" if deleting else ""
    return (
        f"\n{why}: this run created {alive}{still}; those jobs keep running. "
        "Rerun the same command to continue the sweep (it submits only what is "
        f"missing or failed), or `corejob cancel --sweep {run.sweep}`."
    )


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
                give_up_slow_deletions(run, views, out)
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
            print(stop_message(run, tracker.snapshot(), why), file=out)
            raise
