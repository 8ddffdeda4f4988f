"""The core ledger's rule (pure) and its file (shared by supervisors, pruned of the dead)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from corejob.backends.core_ledger import (
    Claim,
    CoreLedger,
    admission,
    core_capacity,
    cores_needed,
    threads_per_process,
)


def claim(job: str, cores: int, since: float = 0.0) -> Claim:
    return Claim(job, cores, pid=1, start_time=None, since=since)


def test_threads_fill_the_cores_and_a_job_needs_them_all():
    assert threads_per_process(2, 8) == 4 and cores_needed(2, 8) == 8
    assert threads_per_process(3, 8) == 2 and cores_needed(3, 8) == 6
    # more processes than cores: one thread each, more cores than exist
    assert threads_per_process(4, 2) == 1 and cores_needed(4, 2) == 4


def test_a_claim_fits_beside_holders_or_waits_naming_them():
    assert admission(claim("b", 2), [claim("a", 2)], [], capacity=4).admitted
    waiting = admission(claim("b", 2), [claim("a", 2)], [], capacity=2)
    assert not waiting.admitted
    assert waiting.message == "queued for CPU: needs 2 of 2 cores, 2 in use by a (2)"


def test_a_job_bigger_than_the_machine_runs_alone():
    assert admission(claim("big", 6), [], [], capacity=2).admitted
    assert not admission(claim("big", 6), [claim("a", 1)], [], capacity=2).admitted


def test_first_come_first_served():
    """A small job that would fit does not overtake one that has waited longer."""
    early, late = claim("early", 2, since=1.0), claim("late", 1, since=2.0)
    decision = admission(late, [claim("a", 1)], [early], capacity=2)
    assert not decision.admitted and "1 job(s) queued ahead" in decision.message
    assert admission(early, [], [late], capacity=2).admitted


def test_capacity_from_the_environment_or_the_affinity_mask():
    assert core_capacity({"COREJOB_LOCAL_CORES": "3"}) == 3
    assert core_capacity({}) >= 1
    with pytest.raises(ValueError, match="COREJOB_LOCAL_CORES='zero'"):
        core_capacity({"COREJOB_LOCAL_CORES": "zero"})


def test_ledger_queues_releases_and_forgets_dead_holders(tmp_path: Path):
    ledger = CoreLedger(tmp_path, capacity=2)
    assert ledger.try_acquire("a", 2, since=1.0).admitted
    assert not ledger.try_acquire("b", 2, since=2.0).admitted
    ledger.release("a")
    assert CoreLedger(tmp_path, capacity=2).try_acquire("b", 2, since=2.0).admitted
    assert [c.job for c in ledger.holders()] == ["b"]
    # a holder whose process is gone (a killed supervisor) holds nothing
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    ledger_file = tmp_path / "_local" / "cores.json"
    ledger_file.write_text(
        ledger_file.read_text().replace(
            f'"pid": {ledger.holders()[0].pid}', f'"pid": {int(dead.stdout)}'
        )
    )
    assert ledger.holders() == []


def test_a_damaged_ledger_file_counts_as_empty(tmp_path: Path):
    (tmp_path / "_local").mkdir()
    (tmp_path / "_local" / "cores.json").write_text("{not json")
    assert CoreLedger(tmp_path, capacity=1).try_acquire("a", 1, since=0.0).admitted


def test_acquire_gives_up_when_told_to_and_leaves_the_queue(tmp_path: Path):
    ledger = CoreLedger(tmp_path, capacity=1)
    assert ledger.try_acquire("a", 1, since=0.0).admitted
    heard: list[str] = []
    assert not ledger.acquire("b", 1, stop=lambda: bool(heard), on_wait=heard.append, poll_s=0)
    assert heard == ["queued for CPU: needs 1 of 1 cores, 1 in use by a (1)"]
    ledger.release("a")
    assert ledger.try_acquire("c", 1, since=5.0).admitted  # b no longer queued ahead
