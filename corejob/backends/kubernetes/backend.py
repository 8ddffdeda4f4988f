"""Run PyTorchJobs on a Kubernetes cluster with the Kubeflow training operator.

The backend talks to the API through :class:`~corejob.backends.kubernetes.api.KubeApi`
(retries, typed errors), tracks many jobs with one watch
(:class:`~corejob.backends.kubernetes.watch.JobTracker`) and explains pending pods
(:mod:`corejob.backends.kubernetes.explain`). Pods are found by the labels the operator
puts on them (:mod:`corejob.job.kubeflow`).
"""

from __future__ import annotations

import os
import queue
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from corejob.backends.base import SubmitOutcome
from corejob.backends.kubernetes.api import KubeApi
from corejob.backends.kubernetes.config import load_target
from corejob.backends.kubernetes.explain import explain_pending, explain_queued, queue_of
from corejob.backends.kubernetes.owned import create_owned
from corejob.backends.kubernetes.watch import JobTracker
from corejob.errors import (
    ConflictError,
    ForbiddenError,
    JobNotFoundError,
    NotInstalledError,
    UsageError,
)
from corejob.job.kubeflow import JOB_NAME_LABEL, REPLICA_INDEX_LABEL, REPLICA_TYPE_LABEL
from corejob.job.state import LABEL_CONFIG_HASH, summarize
from trainer.contract.result import parse_result_line

Job = dict[str, Any]
RESULT_TAIL_LINES = 200
# How long a submit waits for a job of the same name to finish being deleted: the chart's
# termination grace period (120 s) plus the operator's and garbage collector's lag.
DELETION_WAIT_S = 300.0
DELETION_POLL_S = 1.0


def selector_text(selector: dict[str, str] | None) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted((selector or {}).items()))


def replica_selector(name: str, replica: str | None) -> str:
    """``worker-1`` → the selector for that pod; None → every pod of the job."""
    parts = [f"{JOB_NAME_LABEL}={name}"]
    if replica:
        role, _, index = replica.partition("-")
        if role not in ("master", "worker") or (index and not index.isdigit()):
            raise UsageError(f"invalid --replica {replica!r}: use master-0 or worker-<N>")
        parts.append(f"{REPLICA_TYPE_LABEL}={role}")
        if index:
            parts.append(f"{REPLICA_INDEX_LABEL}={index}")
    return ",".join(parts)


def pod_rank(pod: Job) -> tuple[int, str]:
    """Global rank of a pod (master 0, worker-i i+1) and its short name ``worker-i``."""
    labels = pod["metadata"].get("labels") or {}
    role = labels.get(REPLICA_TYPE_LABEL, "?").lower()
    index = int(labels.get(REPLICA_INDEX_LABEL, 0) or 0)
    return (0 if role == "master" else index + 1), f"{role}-{index}"


class KubernetesBackend:
    """The :class:`~corejob.backends.base.Backend` for a real (or emulated) cluster."""

    name = "kubernetes"

    def __init__(self, namespace: str | None = None, context: str | None = None) -> None:
        self.target = load_target(namespace, context)
        self.namespace = self.target.namespace
        self.api = KubeApi(self.target)

    # --- the Backend protocol -------------------------------------------------------------

    def submit(self, job: Job) -> SubmitOutcome:
        """Create the job, then the objects it owns (``kubernetes.owned``: its ConfigMap)."""
        outcome, current = self._create_job(job)
        notes = create_owned(self.api, job, current, outcome.created)
        return replace(outcome, notes=notes) if notes else outcome

    def _create_job(self, job: Job) -> tuple[SubmitOutcome, Job]:
        """Create the job; one of that name being deleted is waited for first (bounded):
        its name is free only once its pods are gone. The outcome and the server's job."""
        name = job["metadata"]["name"]
        existing = self.api.get_job(name)
        if existing is not None and existing["metadata"].get("deletionTimestamp"):
            existing = self.await_deletion(existing)
        if existing is None:
            try:
                created = self.api.create_job(job)
                return SubmitOutcome(name, True, summarize(created)), created
            except ConflictError:
                existing = self.api.get_job(name)  # created concurrently, or a real clash
                if existing is None:
                    raise
        wanted = (job["metadata"].get("labels") or {}).get(LABEL_CONFIG_HASH)
        found = (existing["metadata"].get("labels") or {}).get(LABEL_CONFIG_HASH)
        if wanted != found:
            raise ConflictError(
                f"job {name} already exists in namespace {self.namespace!r} with another "
                f"config (config-hash {found} != {wanted}); `corejob cancel {name}` first"
            )
        return SubmitOutcome(name, False, summarize(existing)), existing

    def await_deletion(self, job: Job, timeout_s: float | None = None) -> Job | None:
        """Wait until ``job`` (which has a deletionTimestamp) is gone; None then, or the job
        that took its name meanwhile. ``ConflictError`` when it outlasts ``timeout_s``."""
        name, since = job["metadata"]["name"], job["metadata"]["deletionTimestamp"]
        if timeout_s is None:
            timeout_s = float(os.environ.get("COREJOB_DELETION_WAIT_S", DELETION_WAIT_S))
        print(
            f"corejob: job {name} is being deleted (since {since}); waiting up to "
            f"{timeout_s:.0f}s for it to go before creating it again",
            file=sys.stderr,
        )
        deadline = self.api.clock() + timeout_s
        while True:
            current = self.api.get_job(name)
            if current is None or not current["metadata"].get("deletionTimestamp"):
                return current
            if self.api.clock() >= deadline:
                raise ConflictError(
                    f"job {name} is still being deleted after {timeout_s:.0f}s (its pods are "
                    f"still terminating: kubectl get pods -n {self.namespace} -l "
                    f"{JOB_NAME_LABEL}={name}); submit again once it is gone"
                )
            self.api.sleep(DELETION_POLL_S)

    def get(self, name: str) -> Job | None:
        return self.api.get_job(name)

    def list(self, selector: dict[str, str] | None = None) -> list[Job]:
        return list(self.api.list_jobs(selector_text(selector)).get("items", []))

    def cancel(self, name: str) -> bool:
        return self.api.delete_job(name)

    def logs(
        self,
        name: str,
        replica: str | None = None,
        all_replicas: bool = False,
        follow: bool = False,
        since_seconds: int | None = None,
        tail: int | None = None,
    ) -> Iterator[str]:
        """``tail`` goes to the API server (``tailLines``): only those lines travel."""
        pods = self._log_pods(name, replica, all_replicas)
        if not all_replicas:
            yield from self._pod_lines(pods[0], follow, since_seconds, tail=tail)
            return
        yield from self._interleaved(pods, follow, since_seconds, tail)

    def result(self, name: str) -> dict[str, Any] | None:
        pods = self.api.list_pods(replica_selector(name, "master"))
        if not pods:
            return None
        # The result line is printed at the very end: the log's tail is enough.
        log = self.api.pod_log(pods[0]["metadata"]["name"], tail_lines=RESULT_TAIL_LINES)
        return parse_result_line(str(log).splitlines())

    def explain(self, name: str) -> list[str]:
        job = self.api.get_job(name)
        queue = queue_of(job) if job else None
        if job is not None and queue:
            try:
                workloads = self.api.list_workloads(job["metadata"]["uid"])
            except (ForbiddenError, NotInstalledError):
                workloads = None
            return explain_queued(queue, workloads)
        pods = self.api.list_pods(replica_selector(name, None))
        events: list[Job] = []
        for pod in pods:
            if pod.get("status", {}).get("phase") in (None, "Pending"):
                events.extend(self.api.list_events(pod["metadata"]["name"]))
        return explain_pending(pods, events)

    def track(self, selector: dict[str, str] | None = None, poll_s: float = 2.0) -> JobTracker:
        """One list + one watch for every job matching ``selector`` (changes arrive as they
        happen; ``poll_s`` is the list interval only if watching has to be given up)."""
        return JobTracker(self.api, selector_text(selector), poll_s=max(poll_s, 0.2))

    def exit_codes(self, name: str) -> list[int]:
        """Non-zero exit codes of the job's ``pytorch`` containers (current or last run)."""
        codes = []
        for pod in self.api.list_pods(replica_selector(name, None)):
            for container in pod.get("status", {}).get("containerStatuses") or []:
                for state in (container.get("state"), container.get("lastState")):
                    code = ((state or {}).get("terminated") or {}).get("exitCode")
                    if code:
                        codes.append(int(code))
        return codes

    def node_gpus(self) -> list[int] | None:
        """Allocatable GPUs per node, or None when nodes are not readable (RBAC)."""
        try:
            nodes = self.api.list_nodes()
        except ForbiddenError:
            return None
        if not nodes:
            return None
        return [
            int((node.get("status", {}).get("allocatable") or {}).get("nvidia.com/gpu", 0) or 0)
            for node in nodes
        ]

    # --- logs -----------------------------------------------------------------------------

    def _log_pods(self, name: str, replica: str | None, all_replicas: bool) -> list[Job]:
        wanted = None if all_replicas else (replica or "master")
        pods = sorted(self.api.list_pods(replica_selector(name, wanted)), key=pod_rank)
        if not pods:
            if self.api.get_job(name) is None:
                raise JobNotFoundError(f"job {name} not found in namespace {self.namespace!r}")
            raise JobNotFoundError(
                f"job {name} has no {wanted or ''} pod yet (see `corejob status {name}`)"
            )
        return pods

    def _pod_lines(
        self,
        pod: Job,
        follow: bool,
        since: int | None,
        timestamps: bool = False,
        tail: int | None = None,
    ) -> Iterator[str]:
        response = self.api.pod_log(pod["metadata"]["name"], follow, since, timestamps, tail)
        if not follow:
            yield from str(response).splitlines()
            return
        try:
            buffer = b""
            for chunk in response.stream(1024):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    yield line.decode(errors="replace")
            if buffer:
                yield buffer.decode(errors="replace")
        finally:
            response.release_conn()

    def _interleaved(
        self, pods: list[Job], follow: bool, since: int | None, tail: int | None = None
    ) -> Iterator[str]:
        """Lines of every pod prefixed ``[rank R role-i]``, merged as they arrive."""
        lines: queue.Queue[str | None] = queue.Queue()

        def pump(pod: Job) -> None:
            rank, short = pod_rank(pod)
            try:
                for line in self._pod_lines(pod, follow, since, tail=tail):
                    lines.put(f"[rank {rank} {short}] {line}")
            finally:
                lines.put(None)

        if not follow:  # merged by the kubelet's timestamps (RFC 3339, sortable as text)
            stamped = []
            for pod in pods:
                rank, short = pod_rank(pod)
                for line in self._pod_lines(pod, False, since, timestamps=True, tail=tail):
                    stamp, _, text = line.partition(" ")
                    stamped.append((stamp, rank, f"[rank {rank} {short}] {text}"))
            yield from (line for _, _, line in sorted(stamped))
            return
        for pod in pods:
            threading.Thread(target=pump, args=(pod,), daemon=True).start()
        open_streams = len(pods)
        while open_streams:
            line = lines.get()
            if line is None:
                open_streams -= 1
            else:
                yield line
