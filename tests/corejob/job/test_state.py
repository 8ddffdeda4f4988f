"""The operator's condition history maps to one user-facing state."""

from corejob.job.state import JobState, state_from_conditions, summarize


def _cond(kind: str, status: str = "True", reason: str = "") -> dict:
    return {"type": kind, "status": status, "reason": reason, "message": f"{kind} msg"}


def test_latest_true_condition_is_the_state() -> None:
    history = [_cond("Created", reason="PyTorchJobCreated"), _cond("Running", reason="R")]
    assert state_from_conditions(history) == (JobState.RUNNING, "R", "Running msg")


def test_restarting_flips_back_to_running_via_status_false() -> None:
    history = [_cond("Created"), _cond("Running", "False"), _cond("Restarting")]
    assert state_from_conditions(history)[0] is JobState.RESTARTING


def test_terminal_condition_is_not_displaced_by_a_later_one() -> None:
    history = [_cond("Created"), _cond("Failed", reason="PyTorchJobFailed"), _cond("Running")]
    state, reason, _ = state_from_conditions(history)
    assert (state, reason) == (JobState.FAILED, "PyTorchJobFailed")
    assert state.finished


def test_unknown_types_and_no_conditions_are_unknown() -> None:
    assert state_from_conditions(None)[0] is JobState.UNKNOWN
    assert state_from_conditions([_cond("JobSuspendedSomehow")])[0] is JobState.UNKNOWN


def test_summarize_reads_labels_and_replica_counts() -> None:
    job = {
        "metadata": {
            "name": "res-small-x-1",
            "labels": {"corejob.dev/model": "res_small", "corejob.dev/dataset": "x"},
        },
        "status": {
            "conditions": [_cond("Succeeded")],
            "replicaStatuses": {"Master": {"succeeded": 1}, "Worker": {"active": 2}},
        },
    }
    summary = summarize(job)
    assert (summary.model, summary.dataset, summary.sweep) == ("res_small", "x", None)
    assert summary.state is JobState.SUCCEEDED
    assert summary.replicas["Worker"] == {"active": 2, "succeeded": 0, "failed": 0}


def _trainjob(conditions: list[dict] | None = None, active: int = 0) -> dict:
    status: dict = {"jobsStatus": [{"name": "node", "active": active, "succeeded": 0}]}
    if conditions is not None:
        status["conditions"] = conditions
    return {"kind": "TrainJob", "metadata": {"name": "t"}, "status": status}


def test_trainjob_conditions_map_to_the_same_states() -> None:
    assert summarize(_trainjob()).state is JobState.CREATED
    assert summarize(_trainjob(active=1)).state is JobState.RUNNING
    done = summarize(_trainjob([_cond("Complete", reason="JobSetCompleted")]))
    assert (done.state, done.reason, done.kind) == (
        JobState.SUCCEEDED,
        "JobSetCompleted",
        "TrainJob",
    )
    failed = _trainjob([_cond("Suspended", "False"), _cond("Failed", reason="DeadlineExceeded")])
    assert summarize(failed).state is JobState.FAILED
    assert summarize(_trainjob([_cond("Suspended")], active=0)).state is JobState.SUSPENDED
    assert summarize(_trainjob(active=1)).replicas == {
        "node": {"active": 1, "succeeded": 0, "failed": 0}
    }


def test_a_job_with_a_deletion_timestamp_is_deleting_whatever_its_conditions() -> None:
    running = [{"type": "Running", "status": "True"}]
    job = {"metadata": {"name": "j", "deletionTimestamp": "2026-12-02T17:00:00Z"},
           "status": {"conditions": running}}  # fmt: skip
    summary = summarize(job)
    assert summary.state == JobState.DELETING and not summary.state.finished
    assert summary.message == "being deleted since 2026-12-02T17:00:00Z; it was Running"
    del job["status"]
    assert summarize(job).message == "being deleted since 2026-12-02T17:00:00Z"
