"""What ``corejob status`` prints: one row per job, pure formatting of job objects."""

from __future__ import annotations

import datetime
import re
from typing import Any

from corejob.job.state import JobState, JobSummary, summarize

PENDING_STATES = (JobState.UNKNOWN, JobState.CREATED)
DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")


def parse_duration(text: str) -> float:
    """``"90"``, ``"90s"``, ``"15m"``, ``"2h"``, ``"1d"`` → seconds; ValueError otherwise."""
    match = DURATION.match(text.strip())
    if not match:
        raise ValueError(f"invalid duration {text!r}: use e.g. 90s, 15m, 2h")
    factor = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    return float(match.group(1)) * factor


def age_seconds(created: str | None, now: datetime.datetime | None = None) -> float | None:
    if not created:
        return None
    when = datetime.datetime.fromisoformat(created.replace("Z", "+00:00"))
    return ((now or datetime.datetime.now(datetime.UTC)) - when).total_seconds()


def format_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(max(seconds, 0))}s"


def replica_counts(summary: JobSummary) -> str:
    """``active/succeeded/failed`` summed over Master and Worker."""
    totals = [sum(counts.get(key, 0) for counts in summary.replicas.values())
              for key in ("active", "succeeded", "failed")]  # fmt: skip
    return "/".join(map(str, totals))


def is_stuck(summary: JobSummary, pending_timeout_s: float | None) -> bool:
    age = age_seconds(summary.created)
    return (
        pending_timeout_s is not None
        and summary.state in PENDING_STATES
        and age is not None
        and age > pending_timeout_s
    )


def status_rows(jobs: list[dict[str, Any]], results: dict[str, float | None]) -> list[list[str]]:
    rows = [["JOB", "MODEL", "DATASET", "STATE", "REPLICAS A/S/F", "AGE", "BEST VAL_BPS"]]
    for job in sorted(jobs, key=lambda j: j["metadata"]["name"]):
        summary = summarize(job)
        best = results.get(summary.name)
        rows.append(
            [
                summary.name,
                summary.model or "-",
                summary.dataset or "-",
                summary.state.value,
                replica_counts(summary),
                format_age(age_seconds(summary.created)),
                f"{best:.4f}" if best is not None else "-",
            ]
        )
    return rows


def format_rows(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
