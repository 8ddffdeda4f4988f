"""The operator's job lifecycle rules as pure state transitions (no processes, no clock).

Semantics follow the Kubeflow training operator v1.9 (``pkg/controller.v1/common`` and
``pytorch/pytorchjob_controller.go``):

- a failed replica is restarted when its ``restartPolicy`` says so: ``OnFailure`` and
  ``Always`` always, ``ExitCode`` only for exit codes >= 128 (1-127 are permanent),
  ``Never`` never; otherwise the job fails;
- restarts count against ``runPolicy.backoffLimit`` (when set); the restart that would
  exceed it fails the job instead;
- ``activeDeadlineSeconds`` counted from the job's start fails it and stops everything;
- the job succeeds when the Master succeeds; still-running workers are then stopped per
  ``cleanPodPolicy`` (``Running``/``All`` stop them, ``None``, the default, lets them end);
- conditions: Running and Restarting replace each other, Succeeded/Failed flip Running
  to False, and nothing changes once Failed (``pkg/util/status.go``).

``Always`` acts as ``OnFailure`` here: a replica that exits 0 is done (the kubelet would
restart it, and a job whose Master restarts after success never finishes).

One deliberate local difference: on a cluster a replaced pod takes seconds to be
scheduled, by which time the surviving replicas have noticed the dead peer and exited
(the trainer exits 129, which ``ExitCode`` retries). A local process restarts within
milliseconds and could join the dying gang, so a restarted replica is started only once
no replica is running; survivors still running ``gang_grace_s`` after the failure are
stopped (and, exiting 143, restarted with it). The gang therefore restarts as a whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from corejob.job.kubeflow import MASTER, pod_selector
from trainer.contract.exit_codes import is_retryable

KIND = "PyTorchJob"
PENDING, RUNNING, SUCCEEDED, FAILED = "Pending", "Running", "Succeeded", "Failed"
CREATED = "Created"  # the job condition while it waits (created, nothing started)
# A replica stopped by the clean-up after the job finished: the operator deletes its pod,
# so it is counted nowhere.
DELETED = "Deleted"


@dataclass(frozen=True)
class RunPolicy:
    backoff_limit: int | None = None
    active_deadline_s: float | None = None
    clean_pod_policy: str = "None"
    gang_grace_s: float = 30.0
    kind: str = KIND  # the job's kind, as condition reasons and messages name it

    @classmethod
    def of(cls, job: dict[str, Any], gang_grace_s: float = 30.0) -> RunPolicy:
        run_policy = job.get("spec", {}).get("runPolicy") or {}
        if job.get("kind") == "TrainJob":  # the deadline is top-level; nodes never restart
            run_policy = {"activeDeadlineSeconds": job["spec"].get("activeDeadlineSeconds")}
        deadline = run_policy.get("activeDeadlineSeconds")
        backoff = run_policy.get("backoffLimit")
        return cls(
            backoff_limit=None if backoff is None else int(backoff),
            active_deadline_s=None if deadline is None else float(deadline),
            clean_pod_policy=str(run_policy.get("cleanPodPolicy") or "None"),
            gang_grace_s=gang_grace_s,
            kind=str(job.get("kind") or KIND),
        )


@dataclass(frozen=True)
class ReplicaState:
    """One replica as the supervisor tracks it; ``phase`` is a pod phase."""

    replica_id: str
    role: str
    restart_policy: str
    phase: str = PENDING
    exit_code: int | None = None
    restarts: int = 0
    failed_at: float | None = None


@dataclass(frozen=True)
class Decision:
    """What the supervisor must do now, and the job's new status."""

    status: dict[str, Any]
    replicas: dict[str, ReplicaState]
    start: list[str] = field(default_factory=list)
    stop: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return is_finished(self.status) and not any(
            r.phase == RUNNING for r in self.replicas.values()
        )


def should_restart(restart_policy: str, exit_code: int) -> bool:
    """The operator's retry rule for one failed replica (``IsRetryableExitCode``: >= 128)."""
    if restart_policy == "ExitCode":
        return is_retryable(exit_code)
    return restart_policy in ("OnFailure", "Always")


def exit_code_of(returncode: int) -> int:
    """A container's exit code: a process killed by signal N exits 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def is_finished(status: dict[str, Any]) -> bool:
    return any(
        c.get("type") in (SUCCEEDED, FAILED) and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def set_condition(
    status: dict[str, Any],
    kind: str,
    message: str,
    now: str,
    reason: str | None = None,
    job_kind: str = KIND,
) -> dict[str, Any]:
    """``UpdateJobConditions`` with status True: returns a new status dict."""
    conditions = list(status.get("conditions") or [])
    if any(c.get("type") == FAILED and c.get("status") == "True" for c in conditions):
        return status
    reason = reason or f"{job_kind}{kind}"
    current = next((c for c in conditions if c.get("type") == kind), None)
    if current and current.get("status") == "True" and current.get("reason") == reason:
        return status
    transition = current["lastTransitionTime"] if current and current["status"] == "True" else now
    kept = []
    for condition in conditions:
        if condition.get("type") == kind or {condition.get("type"), kind} == {
            RUNNING,
            "Restarting",
        }:
            continue
        if kind in (SUCCEEDED, FAILED) and condition.get("type") == RUNNING:
            condition = {**condition, "status": "False"}
        kept.append(condition)
    kept.append(
        {
            "type": kind,
            "status": "True",
            "reason": reason,
            "message": message,
            "lastUpdateTime": now,
            "lastTransitionTime": transition,
        }
    )
    return {**status, "conditions": kept}


def replica_statuses(replicas: dict[str, ReplicaState], job_name: str) -> dict[str, Any]:
    """``status.replicaStatuses``: active/succeeded/failed per role, as the operator counts."""
    counts: dict[str, dict[str, Any]] = {}
    for state in replicas.values():
        entry = counts.setdefault(
            state.role,
            {
                "active": 0,
                "succeeded": 0,
                "failed": 0,
                "selector": pod_selector(job_name, state.role),
            },
        )
        key = {RUNNING: "active", SUCCEEDED: "succeeded", FAILED: "failed"}.get(state.phase)
        if key:
            entry[key] += 1
    return counts


def reconcile(
    job_name: str,
    status: dict[str, Any],
    replicas: dict[str, ReplicaState],
    policy: RunPolicy,
    *,
    elapsed_s: float,
    clock: float,
    now: str,
) -> Decision:
    """One reconcile pass: replica phases (already updated with exits) → actions + status.

    ``elapsed_s`` is the time since the job's start (for the deadline), ``clock`` a
    monotonic reading (for the gang grace), ``now`` the timestamp written to conditions.
    """
    if not is_finished(status):
        status, replicas = _judge(job_name, status, dict(replicas), policy, elapsed_s, clock, now)
    status = {**status, "replicaStatuses": replica_statuses(replicas, job_name)}
    if is_finished(status):
        if status.get("completionTime") is None:
            status = {**status, "completionTime": now}
        return Decision(status, replicas, stop=_stops_after_finish(status, replicas, policy))
    return _schedule(job_name, status, replicas, policy, clock, now)


def _judge(
    job_name: str,
    status: dict[str, Any],
    replicas: dict[str, ReplicaState],
    policy: RunPolicy,
    elapsed_s: float,
    clock: float,
    now: str,
) -> tuple[dict[str, Any], dict[str, ReplicaState]]:
    """Apply deadline, success and failure rules; retryable failures become Pending."""
    if policy.active_deadline_s is not None and elapsed_s >= policy.active_deadline_s:
        message = f"Job {job_name} has failed because it was active longer than specified deadline"
        return set_condition(status, FAILED, message, now, job_kind=policy.kind), replicas
    if any(r.role == MASTER and r.phase == SUCCEEDED for r in replicas.values()):
        message = f"{policy.kind} {job_name} is successfully completed."
        return set_condition(status, SUCCEEDED, message, now, job_kind=policy.kind), replicas
    total_restarts = sum(r.restarts for r in replicas.values())
    for replica_id, state in sorted(replicas.items()):
        if state.phase != FAILED or state.failed_at is not None:
            continue
        code = state.exit_code if state.exit_code is not None else 1
        if not should_restart(state.restart_policy, code):
            message = (
                f"{policy.kind} {job_name} is failed because 1 {state.role} replica(s) failed."
            )
            return set_condition(status, FAILED, message, now, job_kind=policy.kind), replicas
        if policy.backoff_limit is not None and total_restarts + 1 > policy.backoff_limit:
            message = (
                f"Job {job_name} has failed because it has reached the specified backoff limit"
            )
            return set_condition(status, FAILED, message, now, job_kind=policy.kind), replicas
        total_restarts += 1
        replicas[replica_id] = replace(
            state, phase=PENDING, restarts=state.restarts + 1, failed_at=clock
        )
        message = (
            f"{policy.kind} {job_name} is restarting because 1 {state.role} replica(s) failed."
        )
        status = set_condition(status, "Restarting", message, now, job_kind=policy.kind)
    return status, replicas


def _schedule(
    job_name: str,
    status: dict[str, Any],
    replicas: dict[str, ReplicaState],
    policy: RunPolicy,
    clock: float,
    now: str,
) -> Decision:
    """Start first launches at once, restarts once the gang is quiet; mark Running."""
    running = [rid for rid, r in replicas.items() if r.phase == RUNNING]
    restarting = [rid for rid, r in replicas.items() if r.phase == PENDING and r.restarts > 0]
    fresh = [rid for rid, r in replicas.items() if r.phase == PENDING and r.restarts == 0]
    start, stop = list(fresh), []
    if restarting and not running:
        start += restarting
    elif restarting:
        first_failure = min(replicas[rid].failed_at or clock for rid in restarting)
        if clock - first_failure >= policy.gang_grace_s:
            stop = running
    master_running = any(r.role == MASTER and r.phase == RUNNING for r in replicas.values())
    if master_running and not restarting:
        status = set_condition(
            status, RUNNING, f"{policy.kind} {job_name} is running.", now, job_kind=policy.kind
        )
    return Decision(status, replicas, start=start, stop=stop)


def _stops_after_finish(
    status: dict[str, Any], replicas: dict[str, ReplicaState], policy: RunPolicy
) -> list[str]:
    running = [rid for rid, r in replicas.items() if r.phase == RUNNING]
    succeeded = any(
        c.get("type") == SUCCEEDED and c.get("status") == "True" for c in status["conditions"]
    )
    if succeeded and policy.clean_pod_policy == "None":
        return []
    return running
