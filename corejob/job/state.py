"""Job state as the Kubeflow training operator reports it, shared by every backend.

Every backend (Kubernetes, local processes, containers) stores or receives a PyTorchJob
object with an operator-shaped ``status`` (``conditions`` + ``replicaStatuses``), so that
one pure mapping turns it into what users see. Keep this module free of I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

LABEL_MODEL = "corejob.dev/model"
LABEL_DATASET = "corejob.dev/dataset"
LABEL_SWEEP = "corejob.dev/sweep"
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


def _is_terminal(condition: dict[str, Any]) -> bool:
    return condition.get("type") in (JobState.SUCCEEDED, JobState.FAILED)


def state_from_conditions(conditions: list[dict[str, Any]] | None) -> tuple[JobState, str, str]:
    """Return (state, reason, message) of the newest condition whose status is "True".

    The operator keeps history in ``conditions`` and flips older ones to "False", so the
    last true condition is the current state (Succeeded/Failed are terminal).
    """
    current: dict[str, Any] | None = None
    for condition in conditions or []:
        if str(condition.get("status")) != "True":
            continue
        try:
            JobState(condition.get("type"))
        except ValueError:
            continue
        # A later true condition wins, except that nothing displaces a terminal one.
        if current is None or not _is_terminal(current) or _is_terminal(condition):
            current = condition
    if current is None:
        return JobState.UNKNOWN, "", ""
    return JobState(current["type"]), current.get("reason", ""), current.get("message", "")


def summarize(job: dict[str, Any]) -> JobSummary:
    """Summarize a PyTorchJob object (as returned by the API or a local backend)."""
    metadata = job.get("metadata", {})
    labels = metadata.get("labels", {}) or {}
    status = job.get("status", {}) or {}
    state, reason, message = state_from_conditions(status.get("conditions"))
    if metadata.get("deletionTimestamp"):
        was = f"; it was {state.value}" if state != JobState.UNKNOWN else ""
        state, reason = JobState.DELETING, "Deleting"
        message = f"being deleted since {metadata['deletionTimestamp']}{was}"
    replicas = {
        role: {key: int(counts.get(key, 0) or 0) for key in ("active", "succeeded", "failed")}
        for role, counts in (status.get("replicaStatuses") or {}).items()
    }
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
        replicas=replicas,
    )
