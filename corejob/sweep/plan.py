"""Sweep scheduling, pure: given the ledger (what the backend reports per cell), what to do.

The backend *is* the ledger: each cell's job has a deterministic name and carries the
sweep label, so a rerun of the same sweep sees what exists, what succeeded and what failed,
and submits only what is missing or failed. Nothing here does I/O; the loop that observes,
acts and waits lives in :mod:`corejob.sweep.runner`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from corejob.job.state import JobState
from trainer.contract.exit_codes import is_retryable

# Failed-condition reasons meaning "the cluster took it away", not "the job is broken".
RETRYABLE_REASONS = ("Evicted", "Preempted", "PreemptionByScheduler", "NodeLost", "NodeShutdown")
EXIT_CODE_IN_TEXT = re.compile(r"exit(?:ed)?[ _-]?(?:code|status)?[\s:=]*(\d{1,3})", re.IGNORECASE)


@dataclass(frozen=True, order=True)
class Cell:
    model: str
    dataset: str

    def __str__(self) -> str:
        return f"{self.model} × {self.dataset}"


@dataclass(frozen=True)
class CellView:
    """What the ledger says about one cell, plus what this run already did to it."""

    cell: Cell
    name: str
    state: JobState | None  # None: no job with this name exists
    retryable: bool = False  # only meaningful when state is FAILED
    attempts: int = 0  # submissions made by this run
    failed_at_start: bool = False  # it was already Failed when this run began
    resubmit: bool = False  # a retry deleted its job: create it again once it is gone
    blocked: str = ""  # why its last create was refused for now (an exceeded quota)


class ActionKind(StrEnum):
    SUBMIT = "submit"  # create the missing job
    RETRY = "retry"  # delete the failed job; a SUBMIT follows once it is gone


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    cell: Cell
    name: str
    attempt: int


@dataclass(frozen=True)
class Plan:
    actions: list[Action]
    running: int
    done: bool


# A job being deleted still holds its slot: its pods run until their grace period ends.
ACTIVE = (JobState.UNKNOWN, JobState.CREATED, JobState.RUNNING, JobState.RESTARTING,
          JobState.DELETING)  # fmt: skip


def sweep_id(models: list[str], datasets: list[str], overrides: list[str]) -> str:
    """A stable id for the grid, so that rerunning the same command finds its jobs."""
    key = "|".join([",".join(models), ",".join(datasets), ",".join(sorted(overrides))])
    return "sw-" + hashlib.sha256(key.encode()).hexdigest()[:8]


def failure_retryable(reason: str, message: str, exit_codes: list[int]) -> bool:
    """Per docs/CONTRACT.md: exit codes >= 128 (lost peer, preemption) are retryable,
    1-127 (bugs, bad config) are not; without exit codes, decide from the reason."""
    codes = [code for code in exit_codes if code != 0]
    if not codes:
        codes = [int(found) for found in EXIT_CODE_IN_TEXT.findall(f"{reason} {message}")]
        codes = [code for code in codes if code != 0]
    if codes:
        return all(is_retryable(code) for code in codes)
    text = f"{reason} {message}".lower()
    return any(known.lower() in text for known in RETRYABLE_REASONS)


def _wants_submission(view: CellView, retries: int) -> ActionKind | None:
    if view.state is None:
        # Missing: new, deleted by our retry (create again), or deleted by someone after we
        # submitted it (then leave it alone).
        return ActionKind.SUBMIT if view.attempts == 0 or view.resubmit else None
    if view.state != JobState.FAILED:
        return None
    if view.failed_at_start and view.attempts == 0:
        return ActionKind.RETRY  # a rerun resubmits what failed before
    if view.retryable and view.attempts <= retries:
        return ActionKind.RETRY
    return None


def plan(views: list[CellView], max_parallel: int, retries: int) -> Plan:
    """Fill free slots (in grid order) with missing cells and retryable failures."""
    running = sum(1 for view in views if view.state in ACTIVE)
    free = max(0, max_parallel - running)
    actions: list[Action] = []
    for view in views:
        kind = _wants_submission(view, retries)
        if kind is not None and len(actions) < free:
            actions.append(Action(kind, view.cell, view.name, view.attempts + 1))
    pending = [view for view in views if _wants_submission(view, retries) is not None]
    done = running == 0 and not pending
    return Plan(actions, running, done)


def grid(
    models: list[str],
    datasets: list[str],
    family: Callable[[str, str], str | None] | None = None,
) -> list[Cell]:
    """Every (model, dataset) pair; with ``family`` (kind, name -> family or None when
    unknown), only pairs whose families agree, so one sweep can mix trainer families
    (V1 models on V1 datasets, video models on video datasets)."""
    cells = [Cell(model, dataset) for model in models for dataset in datasets]
    if family is None:
        return cells
    return [cell for cell in cells if compatible(cell, family)]


def compatible(cell: Cell, family: Callable[[str, str], str | None]) -> bool:
    """Whether a cell's model and dataset may run together (unknown families may)."""
    model, dataset = family("models", cell.model), family("datasets", cell.dataset)
    return model is None or dataset is None or model == dataset


def split_list(text: str) -> list[str]:
    """``"a, b,,c"`` → ["a", "b", "c"] (order kept, duplicates dropped)."""
    return list(dict.fromkeys(item.strip() for item in text.split(",") if item.strip()))


PROGRESS_ORDER = ("queued", "submitted", "created", "running", "restarting", "suspended",
                  "deleting", "succeeded", "failed", "cancelled")  # fmt: skip


def progress_label(view: CellView) -> str:
    """What a user calls the cell's situation (queued: not submitted yet by this run)."""
    if view.state is None:
        return "queued" if view.attempts == 0 or view.resubmit else "cancelled"
    if view.state == JobState.UNKNOWN:
        return "submitted"  # no operator condition yet
    return view.state.value.lower()


def outcome_counts(views: list[CellView]) -> dict[str, int]:
    """Cells per progress label, in lifecycle order."""
    labels = [progress_label(view) for view in views]
    return {label: labels.count(label) for label in PROGRESS_ORDER if label in labels}
