"""What ``corejob status`` says about each job beyond its row: why it failed, and the same
facts as data for ``status -o json|yaml``.

The complaint was that a failed job showed ``1 Master replica(s) failed`` and nothing else,
while the cause — ``corejob-train: error: model config …: kernel_sz: unknown field`` — sat in
``corejob logs``. :func:`last_error_line` picks that line out of a log tail (pure), and
:func:`job_record` gathers what a script needs about one job (state, reason, exit codes,
the error line, progress, result). Reading goes through the backend, so it works the same
for local processes, containers and a cluster; a log that cannot be read leaves the field
empty rather than failing the whole ``status``.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml

from corejob.backends.base import Backend
from corejob.errors import CorejobError
from corejob.job.state import JobState, summarize
from corejob.results.status_table import age_seconds, job_duration

ERROR_TAIL_LINES = 200  # the log tail searched for the error line
TRAINER_ERROR = re.compile(r"corejob-train: (error|preempted):")
EXCEPTION_LINE = re.compile(r"^(\[[\w-]+\] )?([A-Za-z_][\w.]*(Error|Exception|Interrupt)\b.*)$")
NOISE = ("COREJOB_", "corejob: restart")


def last_error_line(lines: Sequence[str]) -> str | None:
    """The line that says why a replica failed: the trainer's own one-line error, else the
    last line of a Python traceback (``ValueError: …``), else the last meaningful line."""
    meaningful = [line.rstrip() for line in lines if line.strip()]
    for pattern in (TRAINER_ERROR, EXCEPTION_LINE):
        for line in reversed(meaningful):
            if pattern.search(line):
                return line
    rest = [line for line in meaningful if not any(n in line for n in NOISE)]
    return rest[-1] if rest else None


def failure_facts(backend: Backend, name: str) -> dict[str, Any]:
    """Exit codes and the error line of a failed job, as far as the backend can read them."""
    try:
        codes = backend.exit_codes(name)
    except CorejobError:
        codes = []
    try:
        tail = list(backend.logs(name, None, True, False, None, ERROR_TAIL_LINES))
    except CorejobError:
        tail = []
    return {"exit_codes": codes, "last_error": last_error_line(tail)}


def failure_lines(name: str, facts: Mapping[str, Any]) -> list[str]:
    """The indented lines under the table for a failed job."""
    lines = []
    if facts.get("exit_codes"):
        lines.append(f"  {name}: exit code {', '.join(map(str, facts['exit_codes']))}")
    if facts.get("last_error"):
        lines.append(f"  {name}: last error: {facts['last_error']}")
    return lines


def _seconds(value: float | None) -> float | None:
    """Milliseconds are enough, and JSON and YAML then print the same number."""
    return None if value is None else round(value, 3)


def job_record(
    job: Mapping[str, Any],
    result: Mapping[str, Any] | None,
    progress: Mapping[str, Any] | None,
    explanation: Iterable[str] = (),
    failure: Mapping[str, Any] | None = None,
    now: datetime.datetime | None = None,
) -> dict[str, Any]:
    """One job as plain data (``status -o json|yaml``); keys match the table's columns."""
    summary = summarize(dict(job))
    duration = job_duration(job, now)
    return {
        "job": summary.name,
        "model": summary.model or None,
        "dataset": summary.dataset or None,
        "sweep": summary.sweep,
        "config_hash": summary.config_hash,
        "state": summary.state.value,
        "kind": summary.kind,
        "reason": summary.reason or None,
        "message": summary.message or None,
        "created": summary.created,
        "age_s": _seconds(age_seconds(summary.created, now)),
        "duration_s": _seconds(duration),
        "replicas": summary.replicas,
        "progress": dict(progress) if progress else None,
        "result": dict(result) if result else None,
        "why": list(explanation),
        **({"exit_codes": [], "last_error": None} | dict(failure or {})),
        "finished": summary.state in (JobState.SUCCEEDED, JobState.FAILED),
    }


def records_text(records: Sequence[Mapping[str, Any]], fmt: str) -> str:
    """``status -o json|yaml``: the records, newline-terminated."""
    if fmt == "json":
        return json.dumps(list(records), indent=2) + "\n"
    return yaml.safe_dump([dict(r) for r in records], sort_keys=False) or "[]\n"


def widen_rows(
    rows: list[list[str]],
    jobs: Sequence[Mapping[str, Any]],
    failures: Mapping[str, Mapping[str, Any]],
) -> list[list[str]]:
    """``status -o wide``: the table plus SWEEP, CONFIG HASH and EXIT columns."""
    by_name = {summarize(dict(job)).name: summarize(dict(job)) for job in jobs}
    wide = [[*rows[0], "SWEEP", "CONFIG HASH", "EXIT"]]
    for row in rows[1:]:
        summary = by_name[row[0]]
        codes = (failures.get(row[0]) or {}).get("exit_codes") or []
        wide.append(
            [
                *row,
                summary.sweep or "-",
                summary.config_hash or "-",
                ",".join(map(str, codes)) or "-",
            ]
        )
    return wide
