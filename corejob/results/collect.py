"""Collect every job's outcome (result or state) as one row per run, from any backend.

The trainer prints one ``COREJOB_RESULT {...}`` line at the end (docs/CONTRACT.md); every
backend's ``result(name)`` returns that object, so collecting needs no volume access.
Failed and unfinished jobs are rows too (with their state and no numbers): a table that
drops them makes a broken sweep look complete. Jobs deleted since (``cancel``) come back
from the backend's results ledger where it has one (locally ``runs/_results/``, on a cluster
result ConfigMaps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from corejob.backends.base import Backend
from corejob.job.state import JobState, labels_match, summarize
from trainer.contract.result import OVERALL_KEY, V1_LABEL

LIVE = "live"
LEDGER = "ledger"
DELETING = JobState.DELETING.value


@dataclass(frozen=True)
class ResultRow:
    """One run of one (model, dataset) cell; numbers are None when the run has none.

    ``best_val_bps``/``final_val_bps``/``oracle_bps``/``oracle_ratio`` hold the run's
    family's headline metric, named by ``metric``: validation bits/spike for V1 (the
    names predate the second family), macro accuracy and its Bayes optimum for video.
    """

    job: str
    model: str
    dataset: str
    sweep: str | None
    state: str
    created: str | None = None
    best_val_bps: float | None = None
    final_val_bps: float | None = None
    oracle_bps: float | None = None
    oracle_ratio: float | None = None
    epochs: int | None = None
    global_step: int | None = None
    wall_time_s: float | None = None
    attempts: int | None = None
    world_size: int | None = None
    samples_per_s: float | None = None
    message: str = ""
    source: str = LIVE
    metric: str = V1_LABEL
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.state == JobState.SUCCEEDED.value


def row_from_job(
    job: dict[str, Any], result: dict[str, Any] | None, source: str = LIVE
) -> ResultRow:
    """The row of one job object and its result object (None: no result line)."""
    summary = summarize(job)
    result = result or {}
    failed = summary.state == JobState.FAILED
    v1 = result.get("metric", OVERALL_KEY) == OVERALL_KEY
    headline = {
        "best": result.get("best_val_bps_overall" if v1 else "best_metric"),
        "final": result.get("final_val_bps_overall" if v1 else "final_metric"),
        "optimum": result.get("oracle_bps_overall" if v1 else "optimum"),
        "ratio": result.get("oracle_ratio_overall" if v1 else "optimum_ratio"),
    }
    return ResultRow(
        job=summary.name,
        model=summary.model or str(result.get("model") or ""),
        dataset=summary.dataset or str(result.get("dataset") or ""),
        sweep=summary.sweep,
        state=summary.state.value,
        created=summary.created,
        best_val_bps=_number(headline["best"]),
        final_val_bps=_number(headline["final"]),
        oracle_bps=_number(headline["optimum"]),
        oracle_ratio=_number(headline["ratio"]),
        epochs=_integer(result.get("epochs")),
        global_step=_integer(result.get("global_step")),
        wall_time_s=_number(result.get("wall_time_s")),
        attempts=_integer(result.get("attempts")),
        world_size=_integer(result.get("world_size")),
        samples_per_s=_number(result.get("samples_per_s")),
        message=": ".join(p for p in (summary.reason, summary.message) if p) if failed else "",
        source=source,
        result=result,
        metric=str(result.get("metric_label") or V1_LABEL) if result else V1_LABEL,
    )


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _integer(value: Any) -> int | None:
    number = _number(value)
    return None if number is None else int(number)


def collect(
    backend: Backend,
    selector: dict[str, str],
    extra: list[tuple[dict[str, Any], dict[str, Any] | None]] | None = None,
) -> list[ResultRow]:
    """One row per job matching ``selector``: the live jobs, then the ledger's jobs that
    are no longer live (a run in both appears once, as live; an earlier run of a reused
    job name is a row of its own). Every finished live job is
    handed to the backend's ledger on the way, so its row survives the job. ``extra``:
    recorded runs to show as ledger rows even if the ledger could not keep them (runs
    read from the checkpoints claim)."""
    rows: dict[tuple[str, str], ResultRow] = {}  # (job name, creation): reruns of a name
    for job in backend.list(selector):
        name = job["metadata"]["name"]
        state = summarize(job).state
        result = backend.result(name) if state == JobState.SUCCEEDED else None
        row = row_from_job(job, result)
        codes = sorted(set(backend.exit_codes(name))) if state == JobState.FAILED else []
        if codes:  # the operator's message only counts failed replicas
            row = replace(row, message=f"{row.message} (exit code {', '.join(map(str, codes))})")
        if state == JobState.FAILED or result is not None:
            backend.keep_result(job, result)
        rows[name, row.created or ""] = row
    for job, result in [*backend.recorded_results(selector), *(extra or [])]:
        row = row_from_job(job, result, source=LEDGER)
        live = rows.get((row.job, row.created or ""))
        if row.job and labels_match(job, selector) and (live is None or live.state == DELETING):
            rows[row.job, row.created or ""] = row  # a job being deleted: its final state
    return sorted(rows.values(), key=lambda r: (r.model, r.dataset, r.created or "", r.job))
