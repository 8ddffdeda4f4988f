"""The progress line: the trainer's writer and the controller's parser are one module."""

from __future__ import annotations

import datetime
import json

import pytest

from trainer.contract.progress import (
    PROGRESS_LINE_PREFIX,
    is_newer,
    last_progress,
    parse_progress_line,
    progress_line,
    utc_timestamp,
)

RECORD = {
    "time": "2025-01-31T12:00:00.123Z",
    "phase": "train",
    "epoch": 2,
    "max_epochs": 5,
    "step": 130,
    "total_steps": 400,
    "train_loss": 0.412,
    "samples_per_s": 1234.5,
    "eta_s": 190.0,
    "val_bps_overall": 0.31,
    "val_bps": {"tiny_back": 0.3, "tiny_gabor": 0.32},
    "val_epoch": 1,
    "attempt": 1,
    "world_size": 2,
}


def test_round_trip_is_one_compact_line():
    line = progress_line(RECORD)
    assert line.startswith(PROGRESS_LINE_PREFIX) and "\n" not in line and ", " not in line
    assert parse_progress_line(line) == RECORD
    assert parse_progress_line("  " + line + "\n") == RECORD  # kubectl's padding


def test_non_finite_numbers_become_null_nested_too():
    record = dict(RECORD, train_loss=float("nan"), val_bps={"a": float("inf"), "b": 0.1})
    parsed = parse_progress_line(progress_line(record))
    assert parsed["train_loss"] is None and parsed["val_bps"] == {"a": None, "b": 0.1}
    json.loads(progress_line(record).removeprefix(PROGRESS_LINE_PREFIX))  # strict JSON


def test_a_record_without_time_phase_or_step_is_refused_on_both_sides():
    with pytest.raises(ValueError, match="step"):
        progress_line({"time": "t", "phase": "train"})
    for text in ('{"time": "t", "phase": "train"}', '{"time": 1, "phase": "x", "step": 1}'):
        assert parse_progress_line(PROGRESS_LINE_PREFIX + text) is None


@pytest.mark.parametrize(
    "line",
    [
        "COREJOB_EPOCH epoch=1/2 step=8",
        f"Traceback: {PROGRESS_LINE_PREFIX}{{}}",  # quoted, not printed by the trainer
        f"[master-0] {progress_line(RECORD)}",  # another replica's prefixed line
        progress_line(RECORD)[:-5],  # cut short
        f"{PROGRESS_LINE_PREFIX}[1, 2]",
    ],
)
def test_other_lines_are_not_records(line):
    assert parse_progress_line(line) is None


def test_the_newest_well_formed_record_of_a_log_tail():
    older = dict(RECORD, time="2025-01-31T12:00:00.000Z", step=100)
    lines = [progress_line(older), "COREJOB_EPOCH epoch=1/5", progress_line(RECORD), "junk"]
    assert last_progress(lines) == RECORD
    assert last_progress([*lines, progress_line(RECORD)[:20]]) == RECORD
    assert last_progress(["nothing", "here"]) is None
    assert is_newer(RECORD, older) and not is_newer(older, RECORD) and is_newer(RECORD, None)
    assert not is_newer(RECORD, RECORD)
    assert is_newer(dict(RECORD, step=131), RECORD)  # same millisecond, further on


def test_timestamps_are_utc_with_milliseconds_and_sort_as_text():
    when = datetime.datetime(2025, 1, 31, 13, 0, 0, 5000, tzinfo=datetime.timezone(
        datetime.timedelta(hours=1)))  # fmt: skip
    assert utc_timestamp(when) == "2025-01-31T12:00:00.005Z"
    later = utc_timestamp(when + datetime.timedelta(milliseconds=1))
    assert later > utc_timestamp(when)
    assert utc_timestamp().endswith("Z")
