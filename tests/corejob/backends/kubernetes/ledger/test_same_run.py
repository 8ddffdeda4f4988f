"""Which claim records are runs the cluster or the ledger already knows."""

from __future__ import annotations

from corejob.backends.kubernetes.ledger.same_run import same_run

RESULT = {"best_val_bps_overall": 0.3, "wall_time_s": 61.2, "attempts": 1}


def job(name: str, created: str, state: str | None = None, ended: str | None = None) -> dict:
    """A job (or record) created at ``created`` that reached ``state`` at ``ended``."""
    conditions = [{"type": "Running", "status": "False" if state else "True",
                   "lastTransitionTime": created}]  # fmt: skip
    if state:
        conditions.append({"type": state, "status": "True", "lastTransitionTime": ended})
    return {"metadata": {"name": name, "creationTimestamp": created},
            "status": {"conditions": conditions}}  # fmt: skip


# The trainer's record of a run that ended at 10:05:00 (it estimates its own creation).
RECORD = job("cell", "2027-01-15T10:04:00Z", "Succeeded", "2027-01-15T10:05:00Z")


def test_equal_results_are_one_run_whatever_the_clocks_say():
    recorded = job("cell", "2027-01-15T10:00:00Z", "Succeeded", "2027-01-15T10:05:03Z")

    assert same_run(RECORD, RESULT, recorded, dict(RESULT))
    assert not same_run(RECORD, RESULT, recorded, dict(RESULT, attempts=2))  # a rerun
    assert not same_run(RECORD, RESULT, {**recorded, "metadata": {"name": "other"}}, RESULT)


def test_a_record_written_within_a_jobs_life_is_that_jobs():
    finished = job("cell", "2027-01-15T10:00:00Z", "Succeeded", "2027-01-15T10:05:01Z")
    running = job("cell", "2027-01-15T10:00:00Z")

    assert same_run(RECORD, None, finished, None)
    assert same_run(RECORD, RESULT, running, None)  # its job will record it when it ends


def test_an_earlier_run_of_a_reused_name_is_its_own_run():
    rerun = job("cell", "2027-01-15T11:00:00Z")  # created after the recorded run ended
    ended_before = job("cell", "2027-01-15T09:00:00Z", "Failed", "2027-01-15T09:10:00Z")

    assert not same_run(RECORD, RESULT, rerun, None)
    assert not same_run(RECORD, None, ended_before, None)  # the record came later
