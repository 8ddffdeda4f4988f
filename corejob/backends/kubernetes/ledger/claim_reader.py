"""The pod that reads the run records on the checkpoints claim, and what it prints (pure).

Why a pod: a job deleted by its ``ttlSecondsAfterFinished`` before any corejob command
looked at it has no result ConfigMap, yet its trainer left ``/runs/<job>/result.json`` on
the checkpoints claim. Only a pod can read a claim. It is built from the pod the chart
renders for the same values a submit uses (:func:`corejob.job.spec.job_pod_spec`), so it
runs the trainer image as the same user, with the same service account, pull secrets and
placement, and mounts the same claim at the same subPath — read-only. Its command is a
few lines of Python that need nothing of corejob (an older image reads as well) and print
one marked JSON line per ``result.json``; a file that is not JSON is a line saying so,
never the end of the read. :func:`parse_reader_log` turns the log back into records.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from corejob.errors import UsageError
from corejob.job.kubeflow import selector_text, trainer_containers
from trainer.contract.result import RESULT_RECORD_FILE, parse_result_record

Spec = dict[str, Any]
RUNS_MOUNT = "/runs"
RECORD_LINE_PREFIX = "COREJOB_RECORD "
END_LINE_PREFIX = "COREJOB_RECORDS_END "
CONTAINER = "reader"
STALE_AFTER_S = 60.0
# Recognisable (``kubectl get pods -l ...``) and cleaned up by the next read.
READER_LABELS = {
    "app.kubernetes.io/name": "corejob",
    "app.kubernetes.io/component": "results-reader",
    "app.kubernetes.io/managed-by": "corejob",
}
READER_SELECTOR = selector_text(READER_LABELS)
# What the reader takes from the job's pod: who it runs as and where it may run.
POD_FIELDS = ("serviceAccountName", "imagePullSecrets", "securityContext", "nodeSelector",
              "tolerations", "affinity", "priorityClassName")  # fmt: skip
# A read of a few thousand small files; a quota that demands limits gets them.
RESOURCES = {"requests": {"cpu": "100m", "memory": "128Mi"},
             "limits": {"cpu": "1", "memory": "512Mi"}}  # fmt: skip
# argv[1]: the mounted claim (a test runs the same command on a directory of its own).
READER_SCRIPT = f"""\
import glob, json, os, sys
files = sorted(glob.glob(os.path.join(sys.argv[1], "*", {RESULT_RECORD_FILE!r})))
for path in files:
    try:
        with open(path, encoding="utf-8") as handle:
            entry = {{"path": path, "record": json.load(handle)}}
    except (OSError, ValueError) as error:
        entry = {{"path": path, "error": type(error).__name__ + ": " + str(error)}}
    print({RECORD_LINE_PREFIX!r} + json.dumps(entry, separators=(",", ":")), flush=True)
print({END_LINE_PREFIX!r} + json.dumps({{"files": len(files)}}), flush=True)
"""
Job = dict[str, Any]


@dataclass(frozen=True)
class ClaimRecord:
    """One ``result.json`` as read from the claim: where, and the record it holds."""

    path: str
    job: Job
    result: dict[str, Any] | None


@dataclass(frozen=True)
class ClaimReading:
    """Everything the reader printed: the records, the files it could not use (one line
    each, ``path: why``), and whether its output is whole (the end line was seen)."""

    records: list[ClaimRecord] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    complete: bool = False


def runs_claim(job_pod: Spec) -> tuple[Spec, Spec]:
    """The job pod's ``/runs`` volume and mount, if a claim backs it; otherwise the
    one-line reason there is nothing to read."""
    mounts = [m for c in trainer_containers(job_pod) for m in c.get("volumeMounts") or []]
    mount = next((m for m in mounts if m.get("mountPath") == RUNS_MOUNT), None)
    volume = next(
        (v for v in job_pod.get("volumes") or [] if mount and v.get("name") == mount["name"]), {}
    )
    if "persistentVolumeClaim" not in volume:
        kind = next((key for key in volume if key != "name"), "no volume")
        raise UsageError(
            f"--from-claim: the checkpoints volume ({RUNS_MOUNT}) of your jobs is {kind}, not a "
            "claim: it does not outlive a job, so no run records are left to read; set "
            "checkpoints.existingClaim (site defaults or -f) to the claim your jobs use"
        )
    assert mount is not None
    return volume, mount


def reader_pod(job_pod: Spec, name: str, deadline_s: int) -> Job:
    """The reader pod for the jobs whose rank-0 pod spec is ``job_pod``.

    ``restartPolicy: Never`` and ``activeDeadlineSeconds``: it ends by itself even if the
    corejob that made it is killed. The claim is mounted read-only, whatever the job does.
    """
    volume, mount = runs_claim(job_pod)
    trainer = trainer_containers(job_pod)[0]
    claim = {**volume["persistentVolumeClaim"], "readOnly": True}
    container = {
        "name": CONTAINER,
        "image": trainer["image"],
        "command": ["python3", "-I", "-c", READER_SCRIPT, RUNS_MOUNT],
        "resources": RESOURCES,
        "volumeMounts": [{**mount, "readOnly": True}],
    }
    for key in ("imagePullPolicy", "securityContext"):
        if key in trainer:
            container[key] = trainer[key]
    spec: Spec = {key: job_pod[key] for key in POD_FIELDS if key in job_pod}
    spec.update(
        restartPolicy="Never",
        activeDeadlineSeconds=int(deadline_s),
        terminationGracePeriodSeconds=1,
        automountServiceAccountToken=False,
        enableServiceLinks=False,
        containers=[container],
        volumes=[{"name": volume["name"], "persistentVolumeClaim": claim}],
    )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": dict(READER_LABELS)},
        "spec": spec,
    }


def parse_reader_log(lines: Iterable[str]) -> ClaimReading:
    """The records the reader printed; unusable files and lines become problems."""
    reading = ClaimReading()
    complete = False
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if line.startswith(END_LINE_PREFIX):
            complete = True
        if not line.startswith(RECORD_LINE_PREFIX):
            continue
        try:
            entry = json.loads(line[len(RECORD_LINE_PREFIX) :])
        except ValueError:
            reading.problems.append(f"reader output line {number}: not JSON (cut short?)")
            continue
        path = str(entry.get("path", "?")) if isinstance(entry, dict) else "?"
        if not isinstance(entry, dict) or "error" in entry:
            why = entry.get("error") if isinstance(entry, dict) else "not an object"
            reading.problems.append(f"{path}: unreadable: {why}")
            continue
        parsed = parse_result_record(entry.get("record"))
        if parsed is None:
            reading.problems.append(f"{path}: not a run record (no job.metadata.name)")
            continue
        reading.records.append(ClaimRecord(path, *parsed))
    return ClaimReading(reading.records, reading.problems, complete)


def stale_readers(pods: list[Job], now_s: float) -> list[str]:
    """Reader pods an earlier read left behind (killed before it could delete its pod):
    those older than their deadline and a minute, when the read that made them has given
    up whatever happened. Younger ones may be another user's read in progress."""
    stale = []
    for pod in pods:
        deadline = int((pod.get("spec") or {}).get("activeDeadlineSeconds") or 0)
        created = rfc3339_seconds((pod.get("metadata") or {}).get("creationTimestamp"))
        if created is not None and now_s - created > deadline + STALE_AFTER_S:
            stale.append(pod["metadata"]["name"])
    return stale


def rfc3339_seconds(text: Any) -> float | None:
    """``2026-01-02T03:04:05Z`` as seconds since the epoch; None when absent or unreadable."""
    try:
        return datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
