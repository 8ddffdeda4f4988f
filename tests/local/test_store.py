"""The runs-directory store and process liveness."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from corejob.local import store
from corejob.local.store import JobStore, process_alive, process_start_time


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
