"""Job state as the Kubeflow training operator reports it, shared by every backend.

Every backend (Kubernetes, local processes, containers) stores or receives a PyTorchJob
object with an operator-shaped ``status`` (``conditions`` + ``replicaStatuses``), so that
one pure mapping turns it into what users see. A TrainJob from a cluster carries Trainer
v2's status instead (conditions ``Suspended``/``Complete``/``Failed``, no "Running": a
job with an active child Job runs; counts per child Job in ``jobsStatus``); it maps onto the
same states. Keep this module free of I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# The model/dataset/sweep label keys are stated once, beside the result record that
# carries them (the trainer writes records without importing the controller).
from trainer.contract.result import LABEL_DATASET, LABEL_MODEL, LABEL_SWEEP

LABEL_CONFIG_HASH = "corejob.dev/config-hash"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"


class JobState(StrEnum):
    """User-facing job state; values are the operator's condition types."""

    UNKNOWN = "Unknown"
    CREATED = "Created"
    RUNNING = "Running"
    RESTARTING = "Restarting"
    SUSPENDED = "Suspended"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    # Not an operator condition: the object has a deletionTimestamp and lingers until its
    # pods are gone (foreground deletion, the pods' grace period); its name is not free yet.
    DELETING = "Deleting"

    @property
    def finished(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED)


@dataclass(frozen=True)
class JobSummary:
    """What `corejob status` shows for one job, derived from the job object alone."""

    name: str
    model: str
    dataset: str
    sweep: str | None
    config_hash: str | None
    state: JobState
    reason: str
    message: str
    created: str | None
    replicas: dict[str, dict[str, int]] = field(default_factory=dict)
    kind: str = "PyTorchJob"  # or "TrainJob": which Kubeflow API runs it


# Trainer v2's condition types that differ from the training operator's.
TRAINJOB_CONDITIONS = {"Complete": JobState.SUCCEEDED}


def _state_of(condition: dict[str, Any]) -> JobState | None:
    kind = condition.get("type")
    if kind in TRAINJOB_CONDITIONS:
        return TRAINJOB_CONDITIONS[kind]
    try:
        return JobState(kind)
    except ValueError:
        return None


def _is_terminal(condition: dict[str, Any]) -> bool:
    return _state_of(condition) in (JobState.SUCCEEDED, JobState.FAILED)


def state_from_conditions(conditions: list[dict[str, Any]] | None) -> tuple[JobState, str, str]:
    """Return (state, reason, message) of the newest condition whose status is "True".

    The operator keeps history in ``conditions`` and flips older ones to "False", so the
    last true condition is the current state (Succeeded/Failed are terminal).
    """
    current: dict[str, Any] | None = None
    for condition in conditions or []:
        if str(condition.get("status")) != "True" or _state_of(condition) is None:
            continue
        # A later true condition wins, except that nothing displaces a terminal one.
        if current is None or not _is_terminal(current) or _is_terminal(condition):
            current = condition
    if current is None:
        return JobState.UNKNOWN, "", ""
    state = _state_of(current) or JobState.UNKNOWN
    return state, current.get("reason", ""), current.get("message", "")


def _trainjob_state(
    status: dict[str, Any], found: tuple[JobState, str, str]
) -> tuple[JobState, str, str]:
    """A TrainJob without a terminal or suspended condition: Running once a child Job is
    active, else Created (the Trainer sets no condition for either)."""
    if found[0] is not JobState.UNKNOWN:
        return found
    active = sum(int(j.get("active") or 0) for j in status.get("jobsStatus") or [])
    return (JobState.RUNNING if active else JobState.CREATED), "", ""


def _replica_counts(status: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Per role (PyTorchJob) or per child Job name (a cluster's TrainJob)."""
    keys = ("active", "succeeded", "failed")
    if status.get("replicaStatuses"):
        return {
            role: {key: int(counts.get(key, 0) or 0) for key in keys}
            for role, counts in status["replicaStatuses"].items()
        }
    return {
        str(job.get("name")): {key: int(job.get(key, 0) or 0) for key in keys}
        for job in status.get("jobsStatus") or []
    }


def summarize(job: dict[str, Any]) -> JobSummary:
    """Summarize a PyTorchJob or TrainJob (as returned by the API or a local backend)."""
    metadata = job.get("metadata", {})
    labels = metadata.get("labels", {}) or {}
    status = job.get("status", {}) or {}
    state, reason, message = state_from_conditions(status.get("conditions"))
    kind = str(job.get("kind") or "PyTorchJob")
    if kind == "TrainJob" and not status.get("replicaStatuses"):  # not a local backend's
        state, reason, message = _trainjob_state(status, (state, reason, message))
    if metadata.get("deletionTimestamp"):
        was = f"; it was {state.value}" if state != JobState.UNKNOWN else ""
        state, reason = JobState.DELETING, "Deleting"
        message = f"being deleted since {metadata['deletionTimestamp']}{was}"
    return JobSummary(
        name=metadata.get("name", ""),
        model=labels.get(LABEL_MODEL, ""),
        dataset=labels.get(LABEL_DATASET, ""),
        sweep=labels.get(LABEL_SWEEP),
        config_hash=labels.get(LABEL_CONFIG_HASH),
        state=state,
        reason=reason,
        message=message,
        created=metadata.get("creationTimestamp"),
        replicas=_replica_counts(status),
        kind=kind,
    )


def labels_match(job: dict[str, Any], selector: dict[str, str] | None) -> bool:
    """Whether ``job``'s labels hold every ``selector`` item (a label selector's equality
    terms, as the API server applies them)."""
    labels = (job.get("metadata") or {}).get("labels") or {}
    return all(labels.get(key) == value for key, value in (selector or {}).items())
