"""The runs-directory store and process liveness."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from corejob.backends.local import store
from corejob.backends.local.log_index import LogSampler, offset_before, offset_since, read_index
from corejob.backends.local.store import (
    JobStore,
    StoreWriteError,
    process_alive,
    process_start_time,
)


def test_jobs_are_listed_by_their_job_json(tmp_path: Path):
    jobs = JobStore(tmp_path)
    jobs.write_job("b", {"metadata": {"name": "b"}})
    jobs.write_job("a", {"metadata": {"name": "a"}})
    (tmp_path / "_claims" / "ckpts").mkdir(parents=True)
    assert jobs.names() == ["a", "b"]
    assert not list(tmp_path.glob("a/.job.json*"))  # no temp file left behind
    jobs.remove_record("a")
    assert jobs.names() == ["b"] and jobs.read_job("a") is None


def test_a_reused_pid_is_not_the_recorded_process():
    pid = os.getpid()
    assert process_alive(pid, process_start_time(pid))
    assert not process_alive(pid, "1")  # same pid, different start: someone else


def test_a_reaped_process_is_dead():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not process_alive(child.pid, None)


def test_without_proc_liveness_falls_back_to_signal_zero(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(store, "_HAS_PROC", False)
    assert process_alive(os.getpid(), "recorded on another kernel")
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not process_alive(child.pid, None)


def test_since_offsets_start_at_a_line_boundary(tmp_path: Path):
    log = tmp_path / "master-0.log"
    log.write_bytes(b"first line\nsecond ")
    sampler = LogSampler()
    sampler.sample([log], now=100.0)
    with open(log, "ab") as handle:
        handle.write(b"half\nthird line\n")
    sampler.sample([log], now=100.2)  # within the interval: not sampled
    sampler.sample([log], now=101.0)
    assert read_index(log) == [(18, 100.0), (34, 101.0)]
    assert offset_before(read_index(log), 99.0) == 0
    assert offset_before(read_index(log), 100.5) == 18
    assert log.read_bytes()[offset_since(log, 100.5) :] == b"second half\nthird line\n"
    assert offset_since(log, 200.0) == 34


def test_a_failed_write_names_the_file_not_its_temp_copy(tmp_path: Path):
    jobs = JobStore(tmp_path)
    (tmp_path / "a" / "job.json").mkdir(parents=True)  # os.replace onto a directory fails
    with pytest.raises(StoreWriteError) as failed:
        jobs.write_job("a", {"metadata": {"name": "a"}})
    assert failed.value.filename == str(tmp_path / "a" / "job.json")
    assert not list((tmp_path / "a").glob(".job.json*"))  # the temp copy is gone


def test_the_failure_note_is_blank_until_written_and_keeps_its_size(tmp_path: Path):
    jobs = JobStore(tmp_path)
    (tmp_path / "a").mkdir()
    note = tmp_path / "a" / store.FAILURE_FILE
    jobs.reserve_failure_note("a")
    assert jobs.read_failure_note("a") is None
    jobs.write_failure_note("a", 42, "No space left on device writing /runs/a/job.json")
    assert jobs.read_failure_note("a") == {
        "pid": 42,
        "reason": "No space left on device writing /runs/a/job.json",
    }
    jobs.write_failure_note("a", 43, "x" * 10_000)  # cut to fit the reserved bytes
    assert jobs.read_failure_note("a")["reason"].endswith("x...")
    assert note.stat().st_size == store.FAILURE_NOTE_BYTES  # overwritten, never grown
    jobs.remove_record("a")
    assert not note.exists() and jobs.read_failure_note("a") is None


def test_without_a_reserved_note_nothing_is_written(tmp_path: Path):
    (tmp_path / "a").mkdir()
    with pytest.raises(FileNotFoundError):
        JobStore(tmp_path).write_failure_note("a", 1, "reason")


def test_resubmitting_keeps_the_previous_runs_logs(tmp_path: Path):
    jobs = JobStore(tmp_path)
    jobs.reset_logs("a")
    assert jobs.log_paths("a") == []
    jobs.log_path("a", "master-0").write_text("first run\n")
    jobs.reset_logs("a")
    jobs.log_path("a", "master-0").write_text("second run\n")
    jobs.reset_logs("a")
    assert jobs.log_paths("a") == []
    assert (tmp_path / "a" / "logs.previous" / "master-0.log").read_text() == "second run\n"


def test_the_log_index_survives_a_line_cut_short(tmp_path: Path):
    """A full disk can cut an index line; the next one is appended right after it."""
    log = tmp_path / "master-0.log"
    log.write_bytes(b"one\n")
    index = tmp_path / "master-0.index"
    index.write_text("4 100.00\n12 1")
    with open(index, "a") as handle:
        handle.write("20 102.00\n")
    assert read_index(log) == [(4, 100.0)]


def test_an_unwritable_index_does_not_stop_the_sampler(tmp_path: Path):
    log = tmp_path / "master-0.log"
    log.write_bytes(b"one\n")
    (tmp_path / "master-0.index").mkdir()  # appending to it fails, as on a full disk
    sampler = LogSampler()
    sampler.sample([log], now=100.0)
    (tmp_path / "master-0.index").rmdir()
    sampler.sample([log], now=101.0)  # retried: the size was not taken as recorded
    assert read_index(log) == [(4, 101.0)]


def test_a_busy_lock_is_reported_when_not_waiting(tmp_path: Path):
    jobs = JobStore(tmp_path)
    with jobs.submit_lock("a") as held:
        assert held
        with jobs.submit_lock("a", wait=False) as second:
            assert second is False
    with jobs.submit_lock("a", wait=False) as free:
        assert free
