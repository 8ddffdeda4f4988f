"""The runs-directory store and process liveness."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from corejob.backends.local import store
from corejob.backends.local.log_index import LogSampler, offset_before, offset_since, read_index
from corejob.backends.local.store import JobStore, process_alive, process_start_time


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
