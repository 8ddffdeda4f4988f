"""A job the sweep created but never saw: watch lag (wait) vs deleted meanwhile (move on)."""

from __future__ import annotations

import corejob.sweep.runner as runner
from corejob.job.state import JobState
from corejob.sweep.plan import Cell, plan
from corejob.sweep.runner import SweepRun, cell_views


class Backend:
    """Only what ``cell_views`` asks of a backend: ``get`` by name."""

    def __init__(self, existing: dict[str, dict]):
        self.existing = existing
        self.gets: list[str] = []

    def get(self, name: str) -> dict | None:
        self.gets.append(name)
        return self.existing.get(name)


def created_run(seconds_ago: float) -> tuple[SweepRun, Cell]:
    cell = Cell("res_small", "synthetic_tiny")
    job = {"metadata": {"name": "res-small-synthetic-tiny-abc"}}
    run = SweepRun("s", {cell: job}, max_parallel=1, retries=0)
    run.attempts[cell] = 1
    run.submitted_at[job["metadata"]["name"]] = runner.time.monotonic() - seconds_ago
    return run, cell


def test_recently_created_unseen_job_is_in_flight_without_asking():
    run, _ = created_run(seconds_ago=1.0)
    backend = Backend({})
    (view,) = cell_views(run, {}, backend)
    assert view.state == JobState.UNKNOWN and backend.gets == []
    assert not plan([view], 1, 0).done


def test_unseen_job_that_still_exists_stays_in_flight():
    run, _ = created_run(seconds_ago=runner.UNSEEN_GRACE_S + 1)
    backend = Backend({"res-small-synthetic-tiny-abc": {"metadata": {}}})
    (view,) = cell_views(run, {}, backend)
    assert view.state == JobState.UNKNOWN and backend.gets == ["res-small-synthetic-tiny-abc"]


def test_unseen_job_deleted_meanwhile_ends_the_cell_and_the_sweep():
    run, _ = created_run(seconds_ago=runner.UNSEEN_GRACE_S + 1)
    (view,) = cell_views(run, {}, Backend({}))
    assert view.state is None and view.attempts == 1  # "cancelled": not resubmitted
    result = plan([view], 1, 0)
    assert result.done and result.actions == []
