"""A finished run's ledger record as a ConfigMap, and back (pure).

Why a ConfigMap the controller writes, not a pod that reads the checkpoints claim: the
record must be readable with nothing running, by the same identity and RBAC that reads
jobs, in one LIST (``corejob results`` on a sweep of 200 cells stays one request, not
200 pod starts on a claim that may be ReadWriteOnce and attached elsewhere). The
ConfigMap has no ownerReference, so neither ``corejob cancel`` nor the job's
``ttlSecondsAfterFinished`` deletes it; it carries the job's labels, so ``--sweep``
selects records on the server as it selects jobs. The trainer's own copy of the same
record stays on the checkpoints claim (``<run dir>/result.json``) as the durable one;
``corejob results --from-claim`` (:mod:`.claim`) reads it back for runs never recorded here.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from corejob.job.kubeflow import selector_text
from trainer.contract.result import parse_result_record, result_record

# Selects the ledger's ConfigMaps (and nothing else corejob makes).
RECORD_LABEL = "corejob.dev/record"
RECORD_KIND = "result"
JOB_LABEL = "corejob.dev/result-of"
RECORD_KEY = "record.json"
Job = dict[str, Any]


def record_name(job: Job) -> str:
    """``<job>-result-<8 hex>``: one record per run, also per run of a reused name (a rerun
    after ``cancel`` is a new object with a new uid)."""
    metadata = job.get("metadata") or {}
    seed = metadata.get("uid") or metadata.get("creationTimestamp") or ""
    return f"{metadata['name']}-result-{hashlib.sha256(seed.encode()).hexdigest()[:8]}"


def with_exit_codes(job: Job, codes: list[int]) -> Job:
    """The job with its trainer exit codes named in its terminal condition's message
    (the pods that knew them are gone when the record is read)."""
    if not codes:
        return job
    conditions = [dict(c) for c in (job.get("status") or {}).get("conditions") or []]
    true = [c for c in conditions if str(c.get("status")) == "True"]
    if true:
        codes_text = ", ".join(map(str, sorted(set(codes))))
        true[-1]["message"] = f"{true[-1].get('message', '')} (exit code {codes_text})".strip()
    return {**job, "status": {**(job.get("status") or {}), "conditions": conditions}}


def record_config_map(job: Job, result: dict[str, Any] | None) -> Job:
    """The ConfigMap holding ``job``'s record: its labels plus the ledger's, no owner."""
    metadata = job.get("metadata") or {}
    labels = dict(metadata.get("labels") or {})
    labels.update({RECORD_LABEL: RECORD_KIND, JOB_LABEL: metadata["name"]})
    record = result_record(job, result)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": record_name(job), "labels": labels},
        "data": {RECORD_KEY: json.dumps(record, sort_keys=True, allow_nan=False)},
    }


def records_of(config_maps: list[Job]) -> list[tuple[Job, dict[str, Any] | None]]:
    """(job, result) of every well-formed record among ``config_maps`` (others skipped:
    a hand-edited ConfigMap must not break ``corejob results``)."""
    found = []
    for config_map in config_maps:
        try:
            payload = json.loads((config_map.get("data") or {}).get(RECORD_KEY) or "")
        except ValueError:
            continue
        parsed = parse_result_record(payload)
        if parsed is not None:
            found.append(parsed)
    return found


def ledger_selector(selector: dict[str, str] | None) -> str:
    """The label selector of the records of the jobs ``selector`` picks."""
    return selector_text({**(selector or {}), RECORD_LABEL: RECORD_KIND})
