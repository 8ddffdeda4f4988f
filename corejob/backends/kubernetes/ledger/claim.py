"""``corejob results --from-claim``: read the run records on the checkpoints claim through a
short-lived pod and add the runs the results ledger misses (the shell over
:mod:`.claim_reader` and :mod:`.same_run`).

One pod per read, whatever happens: created, waited for (polled: a GET every half second
for a pod that lives seconds), its log read, and deleted — also on an error or Ctrl-C. A pod
an earlier, killed read left behind is deleted on the next read once its deadline is past.
"""

from __future__ import annotations

import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from corejob.backends.kubernetes.api import KubeApi
from corejob.backends.kubernetes.explain import explain_pending
from corejob.backends.kubernetes.ledger.claim_reader import (
    CONTAINER,
    READER_SELECTOR,
    ClaimReading,
    parse_reader_log,
    reader_pod,
    stale_readers,
)
from corejob.backends.kubernetes.ledger.same_run import same_run
from corejob.backends.kubernetes.ledger.store import ResultLedger
from corejob.errors import CorejobError, ForbiddenError, JobFailedError, PendingTimeoutError
from corejob.job.state import summarize

Job = dict[str, Any]
POLL_S = 0.5
# Every run directory on the claim is a job the chart rendered: it had this label, which
# ``corejob results`` selects by; the trainer knows only its model/dataset/sweep labels.
CHART_LABELS = {"app.kubernetes.io/name": "corejob"}
LOG_TAIL_LINES = 5


@dataclass
class ClaimImport:
    """What a read found: runs new to the ledger (job, result), how many it knew already,
    records of runs that had not ended, and files it could not use."""

    files: int = 0
    added: list[tuple[Job, dict[str, Any] | None]] = field(default_factory=list)
    known: int = 0
    unfinished: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def summary(self, pod: str) -> str:
        parts = [f"{len(self.added)} new", f"{self.known} already recorded"]
        if self.unfinished:
            parts.append(f"{len(self.unfinished)} not ended ({', '.join(self.unfinished)})")
        if self.problems:
            parts.append(f"{len(self.problems)} unusable (below)")
        return (f"read {self.files} result.json file(s) on the checkpoints claim (pod {pod}): "
                + ", ".join(parts))  # fmt: skip


def read_claim(
    api: KubeApi, job_pod: Job, timeout_s: float, say: Callable[[str], None]
) -> tuple[str, ClaimReading]:
    """Run a reader pod for ``job_pod``'s claim and return (its name, what it printed)."""
    _remove_stale(api, say)
    name = f"corejob-results-{secrets.token_hex(4)}"
    pod = reader_pod(job_pod, name, max(1, int(timeout_s)))
    claim = pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"]
    api.create_pod(pod)
    try:
        say(f"reading the run records on claim {claim} through pod {name} "
            f"(image {pod['spec']['containers'][0]['image']})")  # fmt: skip
        _wait_until_done(api, name, timeout_s)
        log = api.pod_log(name, container=CONTAINER)
        return name, parse_reader_log(str(log).splitlines())
    finally:
        _delete(api, name, say)


def _wait_until_done(api: KubeApi, name: str, timeout_s: float) -> None:
    """Until the pod Succeeded; its failure or a timeout is a one-line error naming it."""
    deadline = api.clock() + timeout_s
    while True:
        pod = api.get_pod(name)
        if pod is None:
            raise JobFailedError(f"results reader pod {name} disappeared before it finished "
                                 "(deleted by someone else?)")  # fmt: skip
        phase = (pod.get("status") or {}).get("phase") or "Pending"
        if phase == "Succeeded":
            return
        if phase == "Failed":
            raise JobFailedError(_failure(api, pod))
        if api.clock() >= deadline:
            raise PendingTimeoutError(_stuck(api, pod, phase, timeout_s))
        api.sleep(POLL_S)


def _failure(api: KubeApi, pod: Job) -> str:
    """Why the reader failed: the pod's reason (DeadlineExceeded, Evicted), its container's
    exit, and the last line it printed (a Python error)."""
    name, status = pod["metadata"]["name"], pod.get("status") or {}
    parts = [p for p in (status.get("reason"), status.get("message")) if p]
    for container in status.get("containerStatuses") or []:
        ended = (container.get("state") or {}).get("terminated") or {}
        if ended:
            parts.append(f"exit code {ended.get('exitCode')} ({ended.get('reason', '')}"
                         f"{': ' + ended['message'] if ended.get('message') else ''})")  # fmt: skip
    try:
        tail = str(api.pod_log(name, tail_lines=LOG_TAIL_LINES, container=CONTAINER))
    except CorejobError:
        tail = ""
    last = next((line.strip() for line in reversed(tail.splitlines()) if line.strip()), "")
    if last:
        parts.append(f"last output: {last}")
    return f"results reader pod {name} failed: {'; '.join(parts) or 'no reason reported'}"


def _stuck(api: KubeApi, pod: Job, phase: str, timeout_s: float) -> str:
    """Why the reader has not finished in time, from its status and events (the same
    explanations ``corejob status`` gives a pending job)."""
    name = pod["metadata"]["name"]
    try:
        events = api.list_events(name)
    except ForbiddenError:
        events = []
    reasons = "; ".join(explain_pending([pod], events)) or "no reason reported"
    return (
        f"results reader pod {name} did not finish within {timeout_s:.0f}s (phase {phase}: "
        f"{reasons}); raise --claim-timeout if the claim is only slow to attach"
    )


def _delete(api: KubeApi, name: str, say: Callable[[str], None]) -> None:
    try:
        api.delete_pod(name)
    except CorejobError as error:  # the answer (or the error being raised) matters more
        say(f"warning: could not delete the results reader pod {name}: {error}; "
            f"kubectl delete pod {name} -n {api.namespace}")  # fmt: skip


def _remove_stale(api: KubeApi, say: Callable[[str], None]) -> None:
    for name in stale_readers(api.list_pods(READER_SELECTOR), time.time()):
        say(f"deleting results reader pod {name} left behind by an earlier read")
        _delete(api, name, say)


def as_cluster_job(job: Job) -> Job:
    """The record's job with the chart's labels it could not know (see CHART_LABELS)."""
    metadata = dict(job.get("metadata") or {})
    metadata["labels"] = {**CHART_LABELS, **(metadata.get("labels") or {})}
    return {**job, "metadata": metadata}


def import_records(
    reading: ClaimReading, ledger: ResultLedger, live_jobs: list[Job]
) -> ClaimImport:
    """Add every ended run of ``reading`` that neither a live job nor the ledger knows.

    A record of a live job's run is that job's (recorded when it is seen finished); one of
    a run not ended (a ``Restarting`` record whose job is gone) is named, not added.
    """
    found = ClaimImport(files=len(reading.records) + len(reading.problems),
                        problems=list(reading.problems))  # fmt: skip
    if not reading.complete:
        found.problems.append("the reader's output ended early: some records may be missing")
    recorded = ledger.records(None)
    for record in reading.records:
        job = as_cluster_job(record.job)
        summary = summarize(job)
        if not summary.state.finished:
            found.unfinished.append(f"{summary.name}: {summary.state.value}")
        elif any(same_run(job, record.result, live, None) for live in live_jobs) or any(
            same_run(job, record.result, known, result) for known, result in recorded
        ):
            found.known += 1
        else:
            ledger.keep(job, record.result, [])
            found.added.append((job, record.result))
    return found


def report(found: ClaimImport, pod: str) -> None:
    """The summary and every unusable file, one line each, on stderr."""
    print(f"corejob: {found.summary(pod)}", file=sys.stderr)
    for problem in found.problems:
        print(f"corejob: warning: {problem}", file=sys.stderr)
