"""Progress on the controller's side: the text a user reads, the status columns, and the
rate-limited reads of the master's log (pure parts, a fake backend, a fake clock)."""

from __future__ import annotations

import datetime
import io
from collections.abc import Iterator
from typing import Any

import pytest

from corejob.errors import JobNotFoundError, UnavailableError
from corejob.job.state import JobState
from corejob.results.status_table import (
    PROGRESS_WINDOW_S,
    ProgressFeed,
    format_rows,
    format_span,
    job_duration,
    latest_progress,
    progress_text,
    progress_window_s,
    status_rows,
    sweep_progress,
)
from corejob.sweep.plan import Cell, CellView
from corejob.sweep.runner import SweepRun, progress_line
from tests.support.local_jobs import chart_job
from trainer.contract.progress import progress_line as record_line

RECORD = {"time": "2025-01-31T12:00:00.000Z", "phase": "train", "epoch": 2, "max_epochs": 5,
          "step": 130, "total_steps": 400, "train_loss": 0.4123, "samples_per_s": 1234.5,
          "eta_s": 190.2, "val_bps_overall": 0.3141, "val_bps": {"a": 0.3}, "val_epoch": 1,
          "attempt": 2, "world_size": 2}  # fmt: skip
NOW = datetime.datetime(2025, 1, 31, 12, 10, tzinfo=datetime.UTC)


def test_the_text_a_user_reads():
    assert progress_text(RECORD) == "epoch 2/5 step 130/400 loss 0.412 bps 0.31 ETA 3m10s"
    first = dict(RECORD, step=1, eta_s=None, val_bps_overall=None, total_steps=None)
    assert progress_text(first) == "epoch 2/5 step 1 loss 0.412"
    validating = dict(RECORD, phase="validate")
    assert progress_text(validating).endswith("ETA 3m10s validating")
    assert progress_text(dict(RECORD, phase="end", eta_s=0.0)).endswith("bps 0.31 done")
    assert progress_text({"time": "t", "phase": "train", "step": 3}) == "epoch ? step 3"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (44.6, "45s"), (190, "3m10s"), (3600 + 5 * 60 + 1, "1h05m"),
     (2 * 86400 + 3 * 3600, "2d03h"), (-3, "0s")],
)  # fmt: skip
def test_spans_are_short_and_exact_enough(seconds, text):
    assert format_span(seconds) == text


def _job(name: str, state: str, **status: Any) -> dict[str, Any]:
    conditions = [{"type": state, "status": "True"}]
    return {
        "metadata": {"name": name, "creationTimestamp": "2025-01-31T12:00:00Z",
                     "labels": {"corejob.dev/model": "res_small"}},
        "status": {"conditions": conditions, **status},
    }  # fmt: skip


def test_status_rows_show_duration_attempts_best_and_progress():
    running = _job("a-run", "Running", startTime="2025-01-31T12:02:00Z")
    done = _job("b-done", "Succeeded", startTime="2025-01-31T12:00:30Z",
                completionTime="2025-01-31T12:05:45Z")  # fmt: skip
    pending = _job("c-pending", "Created")
    results = {"b-done": {"best_val_bps_overall": 0.4321, "attempts": 3}}
    rows = status_rows([pending, done, running], results, {"a-run": RECORD}, now=NOW)
    assert rows[0][-4:] == ["DURATION", "ATTEMPTS", "BEST VAL_BPS", "PROGRESS"]
    by_name = {row[0]: row for row in rows[1:]}
    assert by_name["a-run"][-4:] == ["8m00s", "2", "-", progress_text(RECORD)]
    assert by_name["b-done"][-4:] == ["5m15s", "3", "0.4321", "-"]
    assert by_name["c-pending"][-4:] == ["-", "-", "-", "-"]
    table = format_rows(rows).splitlines()
    assert table[1].startswith("a-run") and table[1].endswith("ETA 3m10s")
    assert job_duration(running, NOW) == 480.0


def test_the_log_window_covers_a_few_of_the_jobs_intervals():
    job = chart_job("w", trainer={"extraArgs": ["--progress_every_seconds", "45"]})
    assert progress_window_s(job) == 135
    equals = chart_job("w", trainer={"extraArgs": ["--progress_every_seconds=2"]})
    assert progress_window_s(equals) == PROGRESS_WINDOW_S  # never less than the floor
    assert progress_window_s(chart_job("w")) == PROGRESS_WINDOW_S
    assert progress_window_s({}) == PROGRESS_WINDOW_S


class FakeBackend:
    """``logs`` of a master as a list the test appends to; counts every read."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.reads: list[tuple[str, int | None]] = []
        self.error: Exception | None = None

    def logs(self, name: str, since_seconds: int | None = None, **_: Any) -> Iterator[str]:
        self.reads.append((name, since_seconds))
        if self.error:
            raise self.error
        yield from list(self.lines)


def test_latest_progress_is_the_newest_record_and_never_an_error():
    backend = FakeBackend()
    older = dict(RECORD, time="2025-01-31T11:59:50.000Z", step=120)
    backend.lines = [record_line(older), "COREJOB_EPOCH epoch=1/5", record_line(RECORD), "x"]
    assert latest_progress(backend, "j", 60) == RECORD
    assert backend.reads == [("j", 60)]  # one read of the log's tail
    for error in (JobNotFoundError("no pod yet"), UnavailableError("API down")):
        backend.error = error
        assert latest_progress(backend, "j", 60) is None


def test_the_feed_reads_each_job_at_most_once_per_interval_and_reports_only_news():
    backend, now = FakeBackend(), [0.0]
    feed = ProgressFeed(backend, 5.0, clock=lambda: now[0])
    jobs = {"j": {}}
    assert feed.poll(jobs) == {}  # no record yet
    backend.lines.append(record_line(RECORD))
    assert feed.poll(jobs) == {} and len(backend.reads) == 1  # not due: no read at all
    now[0] = 5.0
    assert feed.poll(jobs) == {"j": RECORD}
    now[0] = 10.0
    assert feed.poll(jobs) == {}  # the same record is not news
    newer = dict(RECORD, time="2025-01-31T12:00:10.000Z", step=140)
    backend.lines.append(record_line(newer))
    assert feed.poll(jobs, force=True) == {"j": newer}  # forced: read even though not due
    assert len(backend.reads) == 4


def test_a_sweep_shows_one_line_per_running_cell_when_a_record_is_new():
    cells = [Cell("res_small", "tiny"), Cell("res_small", "mixed")]
    jobs = {cell: {"metadata": {"name": f"job-{cell.dataset}"}} for cell in cells}
    run = SweepRun("sw", jobs, 2, 0)
    views = [CellView(cells[0], "job-tiny", JobState.RUNNING, False, 1, False),
             CellView(cells[1], "job-mixed", JobState.CREATED, False, 1, False)]  # fmt: skip
    line = progress_line(run, views, {"job-tiny": "epoch 1/2 step 5/16"})
    assert line.splitlines() == [
        "[sw] 2 cells: 1 created, 1 running",
        "  job-tiny: epoch 1/2 step 5/16",
    ]
    assert progress_line(run, views) == line.splitlines()[0]

    backend, out = FakeBackend(), io.StringIO()
    show = sweep_progress(run, backend, poll_s=0.0, out=out)
    show(views)
    assert out.getvalue() == "" and [name for name, _ in backend.reads] == ["job-tiny"]
    backend.lines.append(record_line(RECORD))
    both_running = [views[0], CellView(cells[1], "job-mixed", JobState.RUNNING, False, 1)]
    show(both_running)  # FakeBackend serves the record for both: each gets its line
    show(both_running)  # nothing new: nothing printed again
    assert out.getvalue().splitlines() == [
        "[sw] 2 cells: 2 running",
        f"  job-tiny: {progress_text(RECORD)}",
        f"  job-mixed: {progress_text(RECORD)}",
    ]


def test_the_wait_loops_pace_is_5_s_unless_the_environment_says_otherwise(monkeypatch):
    assert ProgressFeed(FakeBackend()).interval_s == 5.0
    monkeypatch.setenv("COREJOB_PROGRESS_POLL_S", "0.5")
    assert ProgressFeed(FakeBackend()).interval_s == 0.5
    monkeypatch.setenv("COREJOB_PROGRESS_POLL_S", "0")
    assert ProgressFeed(FakeBackend()).interval_s == 0.05  # the wait loop must not spin
    monkeypatch.setenv("COREJOB_PROGRESS_POLL_S", "soon")
    assert ProgressFeed(FakeBackend()).interval_s == 5.0  # not a number: the default
