"""Sweep planning (pure): free slots, retries within budget, reruns, retryability, ids."""

from __future__ import annotations

import pytest

from corejob.job.state import JobState
from corejob.sweep.plan import (
    ActionKind,
    Cell,
    CellView,
    failure_retryable,
    outcome_counts,
    plan,
    sweep_id,
)

A, B, C = Cell("m", "a"), Cell("m", "b"), Cell("m", "c")


def view(cell: Cell, state: JobState | None, **kwargs) -> CellView:
    return CellView(cell, f"job-{cell.dataset}", state, **kwargs)


def test_plan_fills_only_free_slots_in_grid_order():
    views = [view(A, JobState.RUNNING, attempts=1), view(B, None), view(C, None)]
    result = plan(views, max_parallel=2, retries=1)
    assert [(a.kind, a.cell) for a in result.actions] == [(ActionKind.SUBMIT, B)]
    assert not result.done


def test_plan_retries_retryable_failures_within_budget_only():
    retryable = view(A, JobState.FAILED, retryable=True, attempts=1)
    exhausted = view(B, JobState.FAILED, retryable=True, attempts=2)
    permanent = view(C, JobState.FAILED, retryable=False, attempts=1)
    result = plan([retryable, exhausted, permanent], max_parallel=5, retries=1)
    assert [(a.kind, a.cell, a.attempt) for a in result.actions] == [(ActionKind.RETRY, A, 2)]


def test_plan_on_a_rerun_resubmits_failed_and_missing_but_not_succeeded():
    views = [
        view(A, JobState.SUCCEEDED),
        view(B, JobState.FAILED, failed_at_start=True),
        view(C, None),
    ]
    assert {a.cell for a in plan(views, 5, retries=0).actions} == {B, C}


def test_plan_is_done_when_nothing_runs_or_waits():
    views = [view(A, JobState.SUCCEEDED, attempts=1), view(B, JobState.FAILED, attempts=1)]
    assert plan(views, 2, retries=0).done
    assert not plan([view(A, JobState.CREATED, attempts=1)], 2, 0).done
    cancelled = view(C, None, attempts=1)  # we created it, someone deleted it: leave it
    assert plan([cancelled], 2, 3).done and not plan([cancelled], 2, 3).actions


@pytest.mark.parametrize(
    ("reason", "message", "codes", "expected"),
    [
        ("PyTorchJobFailed", "1 Master replica(s) failed", [143], True),
        ("PyTorchJobFailed", "1 Master replica(s) failed", [129, 137], True),
        ("PyTorchJobFailed", "1 Master replica(s) failed", [2], False),
        ("PyTorchJobFailed", "", [143, 1], False),
        ("PyTorchJobFailed", "container pytorch exited with exit code 143", [], True),
        ("PyTorchJobFailed", "pod exited with exitCode: 1", [], False),
        ("Evicted", "The node was low on resource: memory.", [], True),
        ("PyTorchJobFailed", "something odd", [], False),
    ],
)
def test_failure_retryability_follows_the_contract(reason, message, codes, expected):
    assert failure_retryable(reason, message, codes) is expected


def test_sweep_id_is_stable_for_the_same_grid():
    assert sweep_id(["a"], ["x", "y"], ["k=1"]) == sweep_id(["a"], ["x", "y"], ["k=1"])
    assert sweep_id(["a"], ["x", "y"], []) != sweep_id(["a"], ["x"], [])


def test_progress_counts_use_words_users_know_in_lifecycle_order():
    gone = view(Cell("m", "d"), None, attempts=1)
    views = [view(A, None), view(B, JobState.UNKNOWN, attempts=1),
             view(C, JobState.SUCCEEDED, attempts=1), gone]  # fmt: skip
    assert outcome_counts(views) == {"queued": 1, "submitted": 1, "succeeded": 1, "cancelled": 1}


def test_a_job_being_deleted_holds_its_slot_and_its_cell_is_created_again_once_gone():
    deleting = view(A, JobState.DELETING, attempts=1, resubmit=True)
    result = plan([deleting, view(B, None)], max_parallel=1, retries=1)
    assert result.actions == [] and not result.done  # the dying job's pods still run
    gone = view(A, None, attempts=1, resubmit=True)
    again = plan([gone, view(B, JobState.SUCCEEDED, attempts=1)], max_parallel=1, retries=1)
    assert [(a.kind, a.cell, a.attempt) for a in again.actions] == [(ActionKind.SUBMIT, A, 2)]
    assert outcome_counts([deleting, gone]) == {"queued": 1, "deleting": 1}
    cancelled = view(A, None, attempts=1)  # deleted by someone else: left alone
    assert plan([cancelled], max_parallel=1, retries=1).done


def test_grid_pairs_only_models_and_datasets_of_the_same_family():
    from corejob.cli import known_family
    from corejob.sweep.plan import Cell, grid

    cells = grid(["res_small", "r3d_small"], ["synthetic_tiny", "synthetic_views_tiny"],
                 known_family)  # fmt: skip
    assert cells == [Cell("res_small", "synthetic_tiny"), Cell("r3d_small", "synthetic_views_tiny")]
    # a path only the image has: its family is unknown here, so the trainer decides
    assert grid(["/cfg/m.yaml"], ["synthetic_tiny"], known_family) == [
        Cell("/cfg/m.yaml", "synthetic_tiny")
    ]
