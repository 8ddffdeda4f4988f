"""Why is my job not running? Plain-words reasons from pod status and events (pure).

Input: the job's pods and the events about them, as API dicts. Output: one sentence per
problem, each with what to do. The patterns are a table, so a new cause is one row.
"""

from __future__ import annotations

import re
from typing import Any

from corejob.job.kubeflow import REPLICA_INDEX_LABEL, REPLICA_TYPE_LABEL

Pod = dict[str, Any]

# (regex on a scheduling/event message, explanation; {pod} and {match} are filled in)
SCHEDULING_PATTERNS: list[tuple[str, str]] = [
    (
        r"Insufficient nvidia\.com/gpu",
        "{pod} cannot be scheduled: no node has enough free nvidia.com/gpu ({message}); "
        "wait for GPUs to free up or request fewer (--gpus)",
    ),
    (
        r"Insufficient (cpu|memory)",
        "{pod} cannot be scheduled: no node has enough free {match} ({message}); "
        "lower resources.requests (--set resources.requests.{match}=...)",
    ),
    (
        r"untolerated taint|had taint",
        "{pod} cannot be scheduled: the matching nodes are tainted ({message}); "
        "add a toleration (--set tolerations=...) or ask which nodes you may use",
    ),
    (
        r"unbound immediate PersistentVolumeClaims|persistentvolumeclaim \S+ not found"
        r"|pod has unbound",
        "{pod} is waiting for its volume: the PersistentVolumeClaim is not bound ({message}); "
        "check `kubectl get pvc` (data.existingClaim / checkpoints.existingClaim)",
    ),
    (
        r"didn't match Pod's node affinity|node\(s\) didn't match",
        "{pod} cannot be scheduled: no node matches its node selector/affinity ({message})",
    ),
]
WAITING_REASONS: dict[str, str] = {
    "ImagePullBackOff": "{pod} cannot pull image {image} ({message}); check --image/tag "
    "and that the cluster can reach the registry (imagePullSecrets)",
    "ErrImagePull": "{pod} cannot pull image {image} ({message}); check --image/tag "
    "and that the cluster can reach the registry (imagePullSecrets)",
    "InvalidImageName": "{pod} has an invalid image name {image}; fix --image",
    "CreateContainerConfigError": "{pod} cannot start: {message} (a missing Secret or "
    "ConfigMap, e.g. the W&B API key secret?)",
    "CrashLoopBackOff": "{pod} keeps crashing ({message}); see `corejob logs` for the error",
}


def explain_pending(pods: list[Pod], events: list[dict[str, Any]]) -> list[str]:
    """Reasons why the job's pods are not (all) running; [] when nothing is wrong."""
    if not pods:
        return [
            "the operator has created no pods yet: is the Kubeflow training operator running "
            "(kubectl get pods -n kubeflow) and watching this namespace?"
        ]
    reasons: list[str] = []
    for pod in pods:
        reasons.extend(_pod_reasons(pod))
    for event in events:
        reasons.extend(_event_reasons(event))
    return list(dict.fromkeys(reasons))  # de-duplicate, keep order


def _pod_name(pod: Pod) -> str:
    labels = pod.get("metadata", {}).get("labels") or {}
    replica = labels.get(REPLICA_TYPE_LABEL)
    index = labels.get(REPLICA_INDEX_LABEL)
    return f"{replica}-{index}" if replica and index is not None else pod["metadata"]["name"]


def _pod_reasons(pod: Pod) -> list[str]:
    name, status = _pod_name(pod), pod.get("status") or {}
    reasons = []
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            reasons.extend(_scheduling_reasons(name, condition.get("message") or ""))
    images = {c.get("name"): c.get("image") for c in pod.get("spec", {}).get("containers", [])}
    for container in status.get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting") or {}
        template = WAITING_REASONS.get(waiting.get("reason", ""))
        if template:
            image = container.get("image") or images.get(container.get("name"), "?")
            message = waiting.get("message") or waiting.get("reason")
            reasons.append(template.format(pod=name, image=image, message=message))
    for init in status.get("initContainerStatuses") or []:
        state = init.get("state") or {}
        if "running" in state or "waiting" in state:
            reasons.append(
                f"{name} waits in its init container '{init.get('name')}' for the master "
                "pod's service to resolve: the master is not running yet (see its reasons)"
            )
    return reasons


def _scheduling_reasons(pod: str, message: str) -> list[str]:
    found = []
    for pattern, template in SCHEDULING_PATTERNS:
        match = re.search(pattern, message)
        if match:
            value = match.group(1) if match.groups() else match.group(0)
            found.append(template.format(pod=pod, match=value, message=message.strip()))
    if not found and message:
        found.append(f"{pod} cannot be scheduled: {message.strip()}")
    return found


def _event_reasons(event: dict[str, Any]) -> list[str]:
    involved = (event.get("involvedObject") or {}).get("name", "?")
    pod = re.sub(r"^.*-(master|worker)-(\d+)$", r"\1-\2", involved)
    reason, message = event.get("reason", ""), (event.get("message") or "").strip()
    if reason == "FailedScheduling":
        return _scheduling_reasons(pod, message)
    template = WAITING_REASONS.get(reason)
    if reason in ("Failed", "BackOff") and re.search(r"pull|image", message, re.IGNORECASE):
        template = WAITING_REASONS["ErrImagePull"]
    if template:
        image = re.search(r'image "([^"]+)"', message)
        return [template.format(pod=pod, image=image.group(1) if image else "?", message=message)]
    if reason == "FailedMount" or reason == "FailedAttachVolume":
        return [f"{pod} cannot mount a volume ({message}); check the PVC and its storage class"]
    return []


QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
# Kueue's Workload conditions, most telling first (v1beta1 and v1beta2 alike).
WORKLOAD_CONDITIONS = ("Evicted", "QuotaReserved", "Admitted")


def queue_of(job: dict[str, Any]) -> str | None:
    """The Kueue LocalQueue a suspended job waits in; None when Kueue does not hold it."""
    queue = ((job.get("metadata") or {}).get("labels") or {}).get(QUEUE_LABEL)
    suspended = ((job.get("spec") or {}).get("runPolicy") or {}).get("suspend")
    return queue if queue and suspended else None


def explain_queued(queue: str, workloads: list[dict[str, Any]] | None) -> list[str]:
    """Why Kueue holds the job (suspended until admitted), from its Workload's conditions;
    ``workloads`` None: not readable (RBAC), say only what the job itself shows."""
    held = f"held by Kueue: suspended until LocalQueue '{queue}' admits it"
    if workloads is None:
        return [f"{held} (its Workload is not readable with your permissions)"]
    if not workloads:
        return [
            f"{held}, but Kueue has made no Workload for it: is Kueue running, with its "
            "kubeflow.org/pytorchjob integration enabled and the LocalQueue existing?"
        ]
    reasons = []
    for workload in workloads:
        name = workload["metadata"]["name"]
        conditions = {
            c.get("type"): c for c in (workload.get("status") or {}).get("conditions") or []
        }
        admitted = conditions.get("Admitted", {}).get("status") == "True"
        if admitted:
            reasons.append(f"admitted by Kueue (Workload {name}); waiting to be resumed")
            continue
        told = [conditions[kind] for kind in WORKLOAD_CONDITIONS if kind in conditions]
        detail = "; ".join(
            f"{c.get('type')} {c.get('status')}: {c.get('reason', '')}: {c.get('message', '')}"
            .rstrip(": ") for c in told
        ) or "no conditions yet (Kueue has not looked at it)"  # fmt: skip
        reasons.append(f"{held}; Workload {name}: {detail}")
    return reasons
