"""Run PyTorchJobs (Kubeflow training operator) or TrainJobs (Kubeflow Trainer v2) on a
Kubernetes cluster.

The backend talks to the API through :class:`~corejob.backends.kubernetes.api.KubeApi`
(retries, typed errors), tracks many jobs with one watch
(:class:`~corejob.backends.kubernetes.watch.JobTracker`) and explains pending pods
(:mod:`corejob.backends.kubernetes.explain`). Pods are found by the labels the operator
puts on them (:mod:`corejob.job.kubeflow`); what differs for TrainJobs (discovery, JobSet
pod labels, node ranks) is in :mod:`corejob.backends.kubernetes.job_kinds`. Reads look in
every job API the cluster serves, the backend's own flavour first.
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
from corejob.backends.kubernetes.api import KubeApi, not_installed_message
from corejob.backends.kubernetes.config import load_target
from corejob.backends.kubernetes.explain import explain_pending, explain_queued, queue_of
from corejob.backends.kubernetes.job_kinds import (
    adopt_runtime,
    create_runtime,
    delete_runtime,
    is_worker_pod,
    served_flavors,
    trainjob_pod_rank,
    trainjob_selector,
)
from corejob.backends.kubernetes.ledger.store import ResultLedger
from corejob.backends.kubernetes.owned import create_owned
from corejob.backends.kubernetes.watch import JobTracker
from corejob.errors import (
    ConflictError,
    CorejobError,
    ForbiddenError,
    JobNotFoundError,
    NotInstalledError,
    UsageError,
)
from corejob.job.flavors import FLAVORS, PYTORCHJOB, TRAINJOB, Flavor, choose_flavor, flavor_of
from corejob.job.flavors.trainjob_rules import carried_runtime
from corejob.job.kubeflow import (
    JOB_NAME_LABEL,
    REPLICA_INDEX_LABEL,
    REPLICA_TYPE_LABEL,
    selector_text,
)
from corejob.job.state import LABEL_CONFIG_HASH, summarize
from trainer.contract.result import parse_result_line

Job = dict[str, Any]
RESULT_TAIL_LINES = 200
# How long a submit waits for a job of the same name to finish being deleted: the chart's
# termination grace period (120 s) plus the operator's and garbage collector's lag.
DELETION_WAIT_S = 300.0
DELETION_POLL_S = 1.0


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


def pods_selector(flavor: Flavor, name: str) -> str:
    """Every pod of a job of this flavour (for kubectl hints)."""
    return trainjob_selector(name, None) if flavor is TRAINJOB else replica_selector(name, None)


def rank_function(flavor: Flavor) -> Any:
    """How pods of this flavour are ranked and named (``worker-1``)."""
    return trainjob_pod_rank if flavor is TRAINJOB else pod_rank


class KubernetesBackend:
    """The :class:`~corejob.backends.base.Backend` for a real (or emulated) cluster."""

    name = "kubernetes"

    def __init__(
        self, namespace: str | None = None, context: str | None = None, flavor: str | None = None
    ) -> None:
        self.target = load_target(namespace, context)
        self.namespace = self.target.namespace
        # The flavour this backend submits and tracks: given, else chosen by job_flavor().
        self.flavor = FLAVORS[flavor] if flavor else None
        self.api = KubeApi(self.target, self.flavor or PYTORCHJOB)
        self._served: set[str] | None = None
        self.ledger = ResultLedger(self.api)

    # --- which job API ----------------------------------------------------------------------

    def job_flavor(self, configured: str | None) -> str:
        """The flavour to render jobs as: ``configured`` (the ``apiFlavor`` value), else from
        the CRDs the cluster serves (only one: that one; both: the chart's default)."""
        if not configured and self._served is None:
            self._served = served_flavors(self.api)  # once per backend: a sweep asks per cell
        chosen = choose_flavor(self._served or set(), configured)
        if chosen is None:
            raise NotInstalledError(not_installed_message(list(FLAVORS.values())))
        self.flavor = FLAVORS[chosen]
        self.api = self.api.for_flavor(self.flavor)
        return chosen

    def _apis(self) -> list[KubeApi]:
        """One API per job flavour, this backend's own first."""
        first = self.flavor or PYTORCHJOB
        others = [flavor for flavor in FLAVORS.values() if flavor is not first]
        return [self.api.for_flavor(flavor) for flavor in (first, *others)]

    def _each_api(self, read: Any) -> list[Any]:
        """``read(api)`` for every served flavour; a flavour without a CRD is skipped unless
        neither has one (then the error names both), and so is the other flavour when the
        user may not read it (a Role from before TrainJobs): only this backend's must be."""
        answers, missing = [], []
        for index, api in enumerate(self._apis()):
            try:
                answers.append(read(api))
            except NotInstalledError:
                missing.append(api.flavor)
            except ForbiddenError:
                if index == 0:
                    raise
        if len(missing) == len(FLAVORS):
            raise NotInstalledError(not_installed_message(missing))
        return answers

    def _find(self, name: str) -> Job | None:
        """The job in whichever API has it, asking the other only when the first has not."""
        found: list[Job] = []

        def get_until_found(api: KubeApi) -> None:
            if not found and (job := api.get_job(name)) is not None:
                found.append(job)

        self._each_api(get_until_found)
        return found[0] if found else None

    # --- the Backend protocol -------------------------------------------------------------

    def submit(self, job: Job) -> SubmitOutcome:
        """Create the job (after a TrainingRuntime it brings), then the objects it owns
        (``kubernetes.owned``: its ConfigMap)."""
        outcome, current = self._create_job(job)
        notes = create_owned(self.api.for_flavor(flavor_of(job)), job, current, outcome.created)
        return replace(outcome, notes=notes) if notes else outcome

    def _create_job(self, job: Job) -> tuple[SubmitOutcome, Job]:
        """Create the job; one of that name being deleted is waited for first (bounded):
        its name is free only once its pods are gone. The outcome and the server's job."""
        name = job["metadata"]["name"]
        api = self.api.for_flavor(flavor_of(job))
        existing = api.get_job(name)
        if existing is not None and existing["metadata"].get("deletionTimestamp"):
            existing = self.await_deletion(existing)
        if existing is None:
            runtime = carried_runtime(job)
            if runtime:
                create_runtime(api, runtime)
            try:
                created = api.create_job(job)
                if runtime:
                    adopt_runtime(api, runtime["metadata"]["name"], created)
                return SubmitOutcome(name, True, summarize(created)), created
            except ConflictError:
                existing = api.get_job(name)  # created concurrently, or a real clash
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
            current = self.api.for_flavor(flavor_of(job)).get_job(name)
            if current is None or not current["metadata"].get("deletionTimestamp"):
                return current
            if self.api.clock() >= deadline:
                raise ConflictError(
                    f"job {name} is still being deleted after {timeout_s:.0f}s (its pods are "
                    f"still terminating: kubectl get pods -n {self.namespace} -l "
                    f"{pods_selector(flavor_of(job), name)}); submit again once it is gone"
                )
            self.api.sleep(DELETION_POLL_S)

    def get(self, name: str) -> Job | None:
        return self._find(name)

    def list(self, selector: dict[str, str] | None = None) -> list[Job]:
        text = selector_text(selector)
        listings = self._each_api(lambda api: api.list_jobs(text).get("items", []))
        return [job for items in listings for job in items]

    def cancel(self, name: str) -> bool:
        """Delete the job (its pods go with it) and the TrainingRuntime it brought, if any.
        A finished job is recorded in the results ledger first, so its row survives."""
        job = self._find(name)
        if job is None:
            return False
        self._keep_before_deletion(job)
        deleted = self.api.for_flavor(flavor_of(job)).delete_job(name)
        runtime = carried_runtime(job)
        if runtime:
            delete_runtime(self.api.for_flavor(TRAINJOB), runtime["metadata"]["name"])
        return deleted

    def _keep_before_deletion(self, job: Job) -> None:
        """Record a finished job while its pods (its log, its exit codes) still exist."""
        try:
            self.ledger.keep_finished(job, self.result, self.exit_codes)
        except CorejobError as error:  # a log that cannot be read loses the copy, not the cancel
            print(f"corejob: {job['metadata']['name']}: result not recorded before deletion: "
                  f"{error}", file=sys.stderr)  # fmt: skip

    def keep_result(self, job: Job, result: dict[str, Any] | None) -> None:
        """A result ConfigMap per finished run (created once; see ``ledger/config_map``)."""
        self.ledger.keep_finished(job, lambda _: result, self.exit_codes)

    def recorded_results(
        self, selector: dict[str, str] | None = None
    ) -> list[tuple[Job, dict[str, Any] | None]]:
        return self.ledger.records(selector)

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
        api, pods = self._log_pods(name, replica, all_replicas)
        if not all_replicas:
            yield from self._pod_lines(api, pods[0], follow, since_seconds, tail=tail)
            return
        yield from self._interleaved(api, pods, follow, since_seconds, tail)

    def result(self, name: str) -> dict[str, Any] | None:
        api, pods = self._pods(name, "master-0")
        if not pods:
            return None
        # The result line is printed at the very end: the log's tail is enough.
        log = api.pod_log(pods[0]["metadata"]["name"], tail_lines=RESULT_TAIL_LINES)
        return parse_result_line(str(log).splitlines())

    def _pods(self, name: str, replica: str | None) -> tuple[KubeApi, list[Job]]:
        """The job's pods (one replica's, or all) and the API of the flavour that has them,
        rank order. This backend's flavour is asked first; pods are listed, not the job."""
        for api in self._apis():
            if api.flavor is TRAINJOB:
                pods = api.list_pods(trainjob_selector(name, replica))
                if replica == "worker":
                    pods = [pod for pod in pods if is_worker_pod(pod)]
            else:
                pods = api.list_pods(replica_selector(name, replica))
            if pods:
                return api, sorted(pods, key=rank_function(api.flavor))
        return self.api, []

    def explain(self, name: str) -> list[str]:
        job = self._find(name)
        queue = queue_of(job) if job else None
        if job is not None and queue:
            try:
                workloads = self.api.list_workloads(job["metadata"]["uid"])
            except (ForbiddenError, NotInstalledError):
                workloads = None
            return explain_queued(queue, workloads)
        _, pods = self._pods(name, None)
        if not pods and job is not None and flavor_of(job) is TRAINJOB:
            runtime = (job.get("spec") or {}).get("runtimeRef") or {}
            return [
                "Kubeflow Trainer has created no pods yet: are its controller and JobSet's "
                "running (kubectl get pods -n kubeflow-system), and does the "
                f"{runtime.get('kind', 'ClusterTrainingRuntime')} {runtime.get('name')!r} exist?"
            ]
        events: list[Job] = []
        for pod in pods:
            if pod.get("status", {}).get("phase") in (None, "Pending"):
                events.extend(self.api.list_events(pod["metadata"]["name"]))
        return explain_pending(pods, events)

    def track(self, selector: dict[str, str] | None = None, poll_s: float = 2.0) -> JobTracker:
        """One list + one watch for every job matching ``selector`` (changes arrive as they
        happen; ``poll_s`` is the list interval only if watching has to be given up)."""
        if self.flavor is None:
            self.job_flavor(None)
        return JobTracker(self.api, selector_text(selector), poll_s=max(poll_s, 0.2))

    def exit_codes(self, name: str) -> list[int]:
        """Non-zero exit codes of the job's ``pytorch`` containers (current or last run)."""
        codes = []
        for pod in self._pods(name, None)[1]:
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

    def _log_pods(
        self, name: str, replica: str | None, all_replicas: bool
    ) -> tuple[KubeApi, list[Job]]:
        wanted = None if all_replicas else (replica or "master")
        api, pods = self._pods(name, wanted)
        if not pods:
            if self.get(name) is None:
                raise JobNotFoundError(f"job {name} not found in namespace {self.namespace!r}")
            raise JobNotFoundError(
                f"job {name} has no {wanted or ''} pod yet (see `corejob status {name}`)"
            )
        return api, pods

    def _pod_lines(
        self,
        api: KubeApi,
        pod: Job,
        follow: bool,
        since: int | None,
        timestamps: bool = False,
        tail: int | None = None,
    ) -> Iterator[str]:
        response = api.pod_log(pod["metadata"]["name"], follow, since, timestamps, tail)
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
        self,
        api: KubeApi,
        pods: list[Job],
        follow: bool,
        since: int | None,
        tail: int | None = None,
    ) -> Iterator[str]:
        """Lines of every pod prefixed ``[rank R role-i]``, merged as they arrive."""
        lines: queue.Queue[str | None] = queue.Queue()

        ranked = rank_function(api.flavor)

        def pump(pod: Job) -> None:
            rank, short = ranked(pod)
            try:
                for line in self._pod_lines(api, pod, follow, since, tail=tail):
                    lines.put(f"[rank {rank} {short}] {line}")
            finally:
                lines.put(None)

        if not follow:  # merged by the kubelet's timestamps (RFC 3339, sortable as text)
            stamped = []
            for pod in pods:
                rank, short = ranked(pod)
                for line in self._pod_lines(api, pod, False, since, timestamps=True, tail=tail):
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
