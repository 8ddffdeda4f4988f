"""The results table: one row per (model, dataset) cell, pure formatting of result rows.

A number without its name was the complaint (``model \\ dataset ... 0.3526``): the header
names the metric (validation bits/spike, best and final epoch), the oracle and the
model/oracle ratio appear where the data is synthetic, and the run's size (epochs, steps,
wall time, attempts) and state sit next to its score, so a 40-step run cannot pass for a
trained model. A cell run several times shows its latest run and the count (``--all``:
every run); failed and flagged runs are rows, never averaged in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from corejob.job.state import JobState
from corejob.results.collect import ResultRow
from trainer.contract.result import CPU_OVERSUBSCRIBED

METRIC = "val bits/spike"  # the V1 family's; each row names its own (ResultRow.metric)
METRIC_MEANINGS = {
    METRIC: "validation bits per spike",
    "val macro accuracy": "validation accuracy, class-balanced per task, mean over tasks"
    " (per-task accuracy and F1: -o json)",
}
DEFAULT_MIN_STEPS = 100
UNDER_TRAINED = "under-trained"
NO_RESULT = "no-result"
OVERSUBSCRIBED = "oversubscribed"
NOT_COMPARABLE = "not-comparable"
# What bounded a run (the trainer's ``training_limits``), in the words a table uses: runs
# of one table trained under other limits are not comparable, however good their number.
LIMITS = {"time_budget_minutes": "time budget (min)", "time_budget_clock": "budget clock",
          "max_epochs": "max epochs", "steps_per_epoch": "steps/epoch",
          "accelerator": "accelerator", "cores": "cores"}  # fmt: skip
FINISHED = (JobState.SUCCEEDED.value, JobState.FAILED.value)


@dataclass(frozen=True)
class TableEntry:
    """A row as shown: the run, how many runs its cell has, and what is wrong with it."""

    row: ResultRow
    runs: int
    flags: tuple[str, ...]
    #: flag -> why, in words (``not-comparable``: which limits differ from the table's)
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def counted(self) -> bool:
        """Whether the run may enter an aggregate (mean, heatmap colour scale)."""
        return self.row.succeeded and self.row.best_val_bps is not None and not self.flags


def fixed(value: float | None, digits: int = 4) -> str:
    """``value`` with ``digits`` decimals, ``-`` for none; never ``-0.000`` (a tiny
    negative rounds to zero, and a signed zero reads as a result below zero)."""
    if value is None:
        return "-"
    text = f"{value:.{digits}f}"
    return f"{0.0:.{digits}f}" if float(text) == 0 else text


def duration(seconds: float | None) -> str:
    """``42s``, ``5m02s``, ``1h03m``: wall time at a glance."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def flags_of(row: ResultRow, min_steps: int) -> tuple[str, ...]:
    """``under-trained``: fewer than ``min_steps`` training steps (a time budget that ran
    out early); ``oversubscribed``: its processes outnumbered the cores it ran on;
    ``no-result``: succeeded without a result line."""
    if not row.succeeded:
        return ()
    if not row.result:
        return (NO_RESULT,)
    flags = []
    if row.global_step is not None and row.global_step < min_steps:
        flags.append(UNDER_TRAINED)
    if row.result.get(CPU_OVERSUBSCRIBED):
        flags.append(OVERSUBSCRIBED)
    return tuple(flags)


def limits_of(row: ResultRow) -> tuple[Any, ...] | None:
    """The run's training limits in :data:`LIMITS` order; None for results that predate
    them (unknown is not flagged)."""
    limits = row.result.get("training_limits") if row.succeeded else None
    if not isinstance(limits, dict):
        return None
    return tuple(limits.get(key) for key in LIMITS)


def reference_limits(rows: Sequence[ResultRow]) -> tuple[tuple[Any, ...] | None, str]:
    """The limits the table's runs are compared with, and what they are: those most runs
    trained under, or without a majority (one run against one) the newest run's."""
    known = [(row.created or "", limits) for row in rows if (limits := limits_of(row))]
    if not known:
        return None, ""
    counts = Counter(limits for _, limits in known)
    top = max(counts.values())
    reference = max((created, limits) for created, limits in known if counts[limits] == top)[1]
    return reference, "most runs" if 2 * top > len(known) else "the newest run"


def limits_text(limits: Sequence[Any]) -> str:
    """``time budget (min) 5, budget clock wall, cores 4`` (unset limits left out)."""
    pairs = zip(LIMITS.values(), limits, strict=False)
    return ", ".join(f"{name} {value}" for name, value in pairs if value is not None) or "none"


def comparability(row: ResultRow, reference: tuple[Any, ...] | None, basis: str) -> str:
    """Why ``row`` is not comparable with the table's runs ("" when it is, or unknown)."""
    limits = limits_of(row)
    if limits is None or reference is None or limits == reference:
        return ""
    names = list(LIMITS.values())
    differ = [i for i in range(len(LIMITS)) if limits[i] != reference[i]]
    mine = ", ".join(f"{names[i]} {_limit(limits[i])}" for i in differ)
    return f"{mine} ({basis}: {', '.join(_limit(reference[i]) for i in differ)})"


def _limit(value: Any) -> str:
    return "unset" if value is None else str(value)


def _cell(row: ResultRow) -> tuple[str, str]:
    return row.model, row.dataset


def _recency(row: ResultRow) -> tuple[bool, str, str]:
    """Latest = the newest finished run (a run still going has no number yet), else the
    newest; created timestamps are ISO strings, so they sort as text."""
    return row.state in FINISHED, row.created or "", row.job


def build_table(
    rows: Sequence[ResultRow], min_steps: int = DEFAULT_MIN_STEPS, all_runs: bool = False
) -> list[TableEntry]:
    """The entries shown: the latest run of each cell (or every run), sorted by cell."""
    cells: dict[tuple[str, str], list[ResultRow]] = {}
    for row in rows:
        cells.setdefault(_cell(row), []).append(row)
    shown_rows: list[tuple[ResultRow, int]] = []
    for cell in sorted(cells):
        runs = sorted(cells[cell], key=_recency)
        oldest_first = sorted(runs, key=lambda row: (row.created or "", row.job))
        shown_rows += [(row, len(runs)) for row in (oldest_first if all_runs else runs[-1:])]
    reference, basis = reference_limits([row for row, _ in shown_rows])
    entries = []
    for row, count in shown_rows:
        flags, reasons = flags_of(row, min_steps), {}
        differs = comparability(row, reference, basis)
        if differs:
            flags, reasons = (*flags, NOT_COMPARABLE), {NOT_COMPARABLE: differs}
        entries.append(TableEntry(row, count, flags, reasons))
    return entries


def model_means(entries: Sequence[TableEntry]) -> dict[str, tuple[float | None, int, int]]:
    """model -> (mean best val bits/spike over its counted cells, counted, cells); failed,
    unfinished and flagged cells are left out (mean None when none is left)."""
    means: dict[str, tuple[float | None, int, int]] = {}
    for model in sorted({e.row.model for e in entries}):
        mine = [e for e in entries if e.row.model == model]
        counted = [e.row.best_val_bps for e in mine if e.counted and e.row.best_val_bps is not None]
        mean = sum(counted) / len(counted) if counted else None
        means[model] = (mean, len(counted), len(mine))
    return means


Column = tuple[str, Callable[[TableEntry], str], bool]  # header, cell text, right-aligned


def columns(entries: Sequence[TableEntry]) -> list[Column]:
    """The table's columns; ``oracle``/``ratio`` only where some run has an oracle,
    ``sweep`` only when the runs come from more than one."""
    has_oracle = any(e.row.oracle_bps is not None for e in entries)
    several_sweeps = len({e.row.sweep for e in entries}) > 1
    metric = shared_metric(entries)
    chosen: list[Column | None] = [
        ("model", lambda e: e.row.model or "-", False),
        ("dataset", lambda e: e.row.dataset or "-", False),
        ("sweep", lambda e: e.row.sweep or "-", False) if several_sweeps else None,
        ("metric", lambda e: e.row.metric, False) if metric is None else None,
        (f"best {metric}" if metric else "best", lambda e: fixed(e.row.best_val_bps), True),
        ("final", lambda e: fixed(e.row.final_val_bps), True),
        ("oracle", lambda e: fixed(e.row.oracle_bps), True) if has_oracle else None,
        ("ratio", lambda e: fixed(e.row.oracle_ratio, 3), True) if has_oracle else None,
        ("epochs", lambda e: _count(e.row.epochs), True),
        ("steps", lambda e: _count(e.row.global_step), True),
        ("wall", lambda e: duration(e.row.wall_time_s), True),
        ("attempts", lambda e: _count(e.row.attempts), True),
        ("state", lambda e: e.row.state, False),
        ("runs", lambda e: str(e.runs), True),
        ("flags", lambda e: ",".join(e.flags) or "-", False),
        ("job", lambda e: e.row.job, False),
    ]
    return [column for column in chosen if column is not None]


def shared_metric(entries: Sequence[TableEntry]) -> str | None:
    """The metric every row reports, or None when families are mixed (a ``metric``
    column then names each row's)."""
    names = {e.row.metric for e in entries}
    return names.pop() if len(names) == 1 else None


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def format_table(entries: Sequence[TableEntry]) -> str:
    """Header + one line per entry, numbers right-aligned."""
    chosen = columns(entries)
    cells = [[header for header, _, _ in chosen]]
    cells += [[text(entry) for _, text, _ in chosen] for entry in entries]
    widths = [max(len(line[i]) for line in cells) for i in range(len(chosen))]
    return "\n".join(
        "  ".join(
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, (_, _, right) in zip(line, widths, chosen, strict=True)
        ).rstrip()
        for line in cells
    )


def legend(entries: Sequence[TableEntry], min_steps: int, all_runs: bool) -> list[str]:
    """The lines under the table that say what its numbers and marks mean."""
    metrics = sorted({e.row.metric for e in entries})
    lines = [
        f"best / final {name}: {METRIC_MEANINGS.get(name, name)} at the best / the last epoch "
        "(higher is better)"
        for name in metrics
    ]
    with_oracle = {e.row.metric for e in entries if e.row.oracle_bps is not None}
    if METRIC in with_oracle:
        lines.append(
            f"oracle: the ground-truth model's {METRIC} on the synthetic data; "
            "ratio: final / oracle"
        )
    if with_oracle - {METRIC}:
        lines.append(
            "oracle (accuracy): the Bayes-optimal classifier's on the synthetic data's noisy"
            " labels; ratio: final / oracle"
        )
    if all_runs:
        lines.append("runs: runs of the cell, each on its own line (oldest first)")
    elif any(e.runs > 1 for e in entries):
        lines.append("runs: runs of the cell; its latest finished run is shown (--all: each)")
    flagged = {flag for e in entries for flag in e.flags}
    if UNDER_TRAINED in flagged:
        lines.append(
            f"flags: {UNDER_TRAINED} = fewer than {min_steps} training steps (--min-steps): "
            "its score is not a trained model's"
        )
    if OVERSUBSCRIBED in flagged:
        lines.append(
            f"flags: {OVERSUBSCRIBED} = more training processes than CPU cores: slower steps, "
            "not comparable with the other runs"
        )
    if NOT_COMPARABLE in flagged:
        reference, basis = reference_limits([e.row for e in entries])
        lines.append(
            f"flags: {NOT_COMPARABLE} = trained under other limits than {basis} of this "
            f"table ({limits_text(reference or ())}): not comparable with them"
        )
        lines += [f"  {e.row.job}: {e.reasons[NOT_COMPARABLE]}"
                  for e in entries if NOT_COMPARABLE in e.reasons]  # fmt: skip
    if NO_RESULT in flagged:
        lines.append(f"flags: {NO_RESULT} = succeeded, but its log has no COREJOB_RESULT line")
    lines += [f"{e.row.state.lower()}: {e.row.job}: {e.row.message}"
              for e in entries if e.row.message]  # fmt: skip
    means = model_means(entries)
    if not all_runs and len({e.row.dataset for e in entries}) > 1:
        parts = [f"{model} {fixed(mean)} ({n} of {total} cells)"
                 for model, (mean, n, total) in means.items()]  # fmt: skip
        name = shared_metric(entries) or "metric (each model's own)"
        lines.append(
            f"mean best {name} per model (failed, unfinished and flagged cells left out): "
            + ", ".join(parts)
        )
    return lines


def render_text(
    entries: Sequence[TableEntry], min_steps: int = DEFAULT_MIN_STEPS, all_runs: bool = False
) -> str:
    """What ``corejob results`` prints: the table, a blank line, the legend."""
    if not entries:
        return "no jobs with results"
    return format_table(entries) + "\n\n" + "\n".join(legend(entries, min_steps, all_runs))
