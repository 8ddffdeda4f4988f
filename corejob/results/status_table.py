"""What ``corejob status`` prints (one row per job), and the jobs' live progress.

The rows are pure formatting of job objects, results and progress records. Progress comes
from the trainer's ``COREJOB_PROGRESS`` lines (:mod:`trainer.contract.progress`) in the
master's log: :func:`latest_progress` reads one log tail per running job through the
backend's ``logs(since_seconds=...)``, and :class:`ProgressFeed` rate-limits those reads
for the loops of ``submit --wait`` and ``sweep``, so no job's log is read more often than
every few seconds.
"""

from __future__ import annotations

import datetime
import math
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TextIO

from corejob.backends.base import Backend
from corejob.errors import CorejobError
from corejob.job.flavors.replicas import master_pod_spec
from corejob.job.kubeflow import trainer_containers
from corejob.job.state import JobState, JobSummary, summarize
from trainer.contract.progress import is_newer, last_progress

if TYPE_CHECKING:
    from corejob.sweep.plan import CellView
    from corejob.sweep.runner import SweepRun

PENDING_STATES = (JobState.UNKNOWN, JobState.CREATED)
RUNNING_STATES = (JobState.RUNNING, JobState.RESTARTING)
DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
PROGRESS_FLAG = "--progress_every_seconds"
TRAINER_PROGRESS_EVERY_S = 10.0  # the trainer's default for PROGRESS_FLAG
PROGRESS_WINDOW_S = 60  # the log tail read for the newest record: several records long
PROGRESS_POLL_S = 5.0  # submit --wait reads a job's progress at most this often
PROGRESS_POLL_ENV = "COREJOB_PROGRESS_POLL_S"  # overrides it (tests, impatient users)


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


def status_rows(
    jobs: list[dict[str, Any]],
    results: Mapping[str, Mapping[str, Any]],
    progress: Mapping[str, Mapping[str, Any] | None] | None = None,
    now: datetime.datetime | None = None,
) -> list[list[str]]:
    """One row per job; ``results`` and ``progress`` (by job name) as far as read."""
    # KIND (PyTorchJob or TrainJob) only once a TrainJob is listed: most clusters run one.
    show_kind = any(job.get("kind") == "TrainJob" for job in jobs)
    header = ["JOB", "MODEL", "DATASET", "STATE", "KIND", "REPLICAS A/S/F", "AGE", "DURATION"]
    if not show_kind:
        header.remove("KIND")
    rows = [[*header, "ATTEMPTS", "BEST VAL_BPS", "PROGRESS"]]
    for job in sorted(jobs, key=lambda j: j["metadata"]["name"]):
        summary = summarize(job)
        result = results.get(summary.name) or {}
        record = (progress or {}).get(summary.name)
        best = result.get("best_val_bps_overall")
        attempts = result.get("attempts") or (record or {}).get("attempt")
        duration = job_duration(job, now)
        rows.append(
            [
                summary.name,
                summary.model or "-",
                summary.dataset or "-",
                summary.state.value,
                *([summary.kind] if show_kind else []),
                replica_counts(summary),
                format_age(age_seconds(summary.created, now)),
                format_span(duration) if duration is not None else "-",
                str(attempts) if attempts else "-",
                f"{best:.4f}" if best is not None else "-",
                progress_text(record) if record else "-",
            ]
        )
    return rows


def job_duration(job: Mapping[str, Any], now: datetime.datetime | None = None) -> float | None:
    """Seconds from the operator's ``startTime`` to ``completionTime`` (or now, while it
    runs); None before it started."""
    status = job.get("status") or {}
    now = now or datetime.datetime.now(datetime.UTC)  # one clock reading for both ends
    started = age_seconds(status.get("startTime"), now)
    if started is None:
        return None
    ended = age_seconds(status.get("completionTime"), now)
    return max(0.0, started - (ended or 0.0))


def format_span(seconds: float) -> str:
    """``45s``, ``3m10s``, ``2h05m``, ``1d03h``: precise enough for an ETA or a duration."""
    total = round(max(seconds, 0.0))
    minutes, secs = divmod(total, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def progress_text(record: Mapping[str, Any]) -> str:
    """``epoch 2/5 step 130/400 loss 0.412 bps 0.31 ETA 3m10s`` from a progress record
    (fields it lacks are left out; ``validating`` / ``done`` say the phase)."""

    def of(value: Any, limit: Any) -> str:
        return f"{value}/{limit}" if limit else f"{value}"

    parts = [f"epoch {of(record.get('epoch', '?'), record.get('max_epochs'))}"]
    parts.append(f"step {of(record.get('step', '?'), record.get('total_steps'))}")
    if (loss := _number(record.get("train_loss"))) is not None:
        parts.append(f"loss {loss:.3f}")
    if (bps := _number(record.get("val_bps_overall"))) is not None:
        parts.append(f"bps {bps:.2f}")
    elif (value := _number(record.get("val_metric"))) is not None:  # another family's metric
        name = str(record.get("metric") or "metric").removeprefix("val_")
        parts.append(f"{name} {value:.2f}")
    if record.get("phase") == "end":
        parts.append("done")
    else:
        if (eta := _number(record.get("eta_s"))) is not None:
            parts.append(f"ETA {format_span(eta)}")
        if record.get("phase") == "validate":
            parts.append("validating")
    return " ".join(parts)


def progress_window_s(job: Mapping[str, Any]) -> int:
    """How far back a log tail must reach to hold the newest record: a few of the
    trainer's intervals (its ``--progress_every_seconds`` in the job's args, if set)."""
    every = TRAINER_PROGRESS_EVERY_S
    try:
        pod = master_pod_spec(job)
        args = [str(arg) for arg in trainer_containers(pod)[0].get("args") or []]
    except (KeyError, IndexError, TypeError):
        args = []
    for i, arg in enumerate(args):
        value = arg.partition("=")[2] if arg.startswith(PROGRESS_FLAG + "=") else None
        if arg == PROGRESS_FLAG and i + 1 < len(args):
            value = args[i + 1]
        try:
            every = float(value) if value is not None else every
        except ValueError:
            continue
    return max(PROGRESS_WINDOW_S, math.ceil(3 * every))


def latest_progress(backend: Backend, name: str, window_s: int) -> dict[str, Any] | None:
    """The newest progress record in the last ``window_s`` seconds of the master's log.

    Best effort: a job without a log yet, or a log the backend cannot read now, has no
    progress (None), never an error: progress must not break ``status`` or a wait.
    """
    try:
        return last_progress(backend.logs(name, since_seconds=window_s))
    except CorejobError:
        return None


def progress_poll_s() -> float:
    """How often ``submit --wait`` reads progress: ``$COREJOB_PROGRESS_POLL_S`` if set
    (at least 50 ms: the wait loop sleeps this long, it must not spin)."""
    try:
        return max(0.05, float(os.environ.get(PROGRESS_POLL_ENV, PROGRESS_POLL_S)))
    except ValueError:
        return PROGRESS_POLL_S


class ProgressFeed:
    """The newest progress record of each job, read at most every ``interval_s`` per job.

    ``poll`` returns only records newer than those it returned before, so a caller prints
    each once, whatever its loop's pace (a watch may wake it many times a second).
    """

    def __init__(
        self,
        backend: Backend,
        interval_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend = backend
        self.interval_s = progress_poll_s() if interval_s is None else interval_s
        self.clock = clock
        self.latest: dict[str, dict[str, Any]] = {}
        self._read_at: dict[str, float] = {}

    def poll(
        self, jobs: Mapping[str, Mapping[str, Any]], force: bool = False
    ) -> dict[str, dict[str, Any]]:
        """Read the jobs (name → job object) that are due (all, with ``force``); returns
        name → record for those with a newer record than before."""
        now = self.clock()
        fresh: dict[str, dict[str, Any]] = {}
        for name, job in jobs.items():
            last = self._read_at.get(name)
            if not force and last is not None and now - last < self.interval_s:
                continue
            self._read_at[name] = now
            record = latest_progress(self.backend, name, progress_window_s(job))
            if record is not None and is_newer(record, self.latest.get(name)):
                self.latest[name] = fresh[name] = record
        return fresh


def format_rows(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def sweep_rows(views: list[CellView]) -> list[list[str]]:
    """The table a finished sweep prints: one row per cell."""
    rows = [["MODEL", "DATASET", "JOB", "STATE", "ATTEMPTS"]]
    for view in views:
        state = view.state.value if view.state else "Missing"
        rows.append([view.cell.model, view.cell.dataset, view.name, state, str(view.attempts)])
    return rows


def status_inputs(
    backend: Backend, jobs: list[dict[str, Any]]
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any] | None]]:
    """What the rows need beyond the job objects, read cheaply: the result of each
    succeeded job and one log tail per running job (results, progress by job name).
    Finished jobs go to the backend's results ledger on the way (it outlives them)."""
    results: dict[str, dict[str, Any]] = {}
    progress: dict[str, dict[str, Any] | None] = {}
    for job in jobs:
        name, state = job["metadata"]["name"], summarize(job).state
        if state == JobState.SUCCEEDED:
            results[name] = backend.result(name) or {}
            if results[name]:
                backend.keep_result(job, results[name])
        elif state == JobState.FAILED:
            backend.keep_result(job, None)
        elif state in RUNNING_STATES:
            progress[name] = latest_progress(backend, name, progress_window_s(job))
    return results, progress


def print_progress(records: Mapping[str, Mapping[str, Any]], out: TextIO | None = None) -> None:
    """``job NAME: epoch 2/5 step 130/400 loss 0.412 bps 0.31 ETA 3m10s``, one per job."""
    for name, record in records.items():
        print(f"job {name}: {progress_text(record)}", file=out or sys.stdout, flush=True)


def sweep_progress(
    run: SweepRun, backend: Backend, poll_s: float, out: TextIO | None = None
) -> Callable[[list[CellView]], None]:
    """The sweep loop's ``on_progress``: when a running cell logged a newer record (each
    job's log read at most every 5 polls, 10 s by default), the sweep's counts line with
    one line per running cell below it (stderr, like the sweep's other progress)."""
    from corejob.sweep.runner import progress_line

    feed = ProgressFeed(backend, 5 * poll_s)

    def show(views: list[CellView]) -> None:
        running = {v.name: run.jobs[v.cell] for v in views if v.state in RUNNING_STATES}
        if feed.poll(running):
            known = [name for name in running if name in feed.latest]
            texts = {name: progress_text(feed.latest[name]) for name in known}
            print(progress_line(run, views, texts), file=out or sys.stderr, flush=True)

    return show
