"""Collect finished jobs' results into a model × dataset table, CSV/JSON and a heatmap.

The trainer prints one ``COREJOB_RESULT {...}`` line at the end (docs/CONTRACT.md); every
backend's ``result(name)`` returns that object, so collecting needs no volume access.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from corejob.backends.base import Backend
from corejob.job.state import JobState, summarize

DEFAULT_METRIC = "best_val_bps_overall"


@dataclass(frozen=True)
class ResultRow:
    job: str
    model: str
    dataset: str
    sweep: str | None
    best_val_bps: float | None
    final_val_bps: float | None
    epochs: int | None
    wall_time_s: float | None
    result: dict[str, Any]


def row_from_result(job: dict[str, Any], result: dict[str, Any]) -> ResultRow:
    summary = summarize(job)
    return ResultRow(
        job=summary.name,
        model=summary.model or str(result.get("model", "")),
        dataset=summary.dataset or str(result.get("dataset", "")),
        sweep=summary.sweep,
        best_val_bps=_number(result.get("best_val_bps_overall")),
        final_val_bps=_number(result.get("final_val_bps_overall")),
        epochs=result.get("epochs"),
        wall_time_s=_number(result.get("wall_time_s")),
        result=result,
    )


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def collect(backend: Backend, selector: dict[str, str]) -> tuple[list[ResultRow], list[str]]:
    """(rows of succeeded jobs with a result line, names of jobs without a result yet)."""
    rows, missing = [], []
    for job in sorted(backend.list(selector), key=lambda j: j["metadata"]["name"]):
        name = job["metadata"]["name"]
        if summarize(job).state != JobState.SUCCEEDED:
            missing.append(name)
            continue
        result = backend.result(name)
        if result is None:
            missing.append(name)
        else:
            rows.append(row_from_result(job, result))
    return rows, missing


def matrix(rows: list[ResultRow]) -> tuple[list[str], list[str], dict[tuple[str, str], float]]:
    """(models, datasets, best val bits/spike per cell); of several jobs for one cell (e.g.
    different trainer settings), the last in ``rows`` wins — filter with --sweep."""
    models = sorted({row.model for row in rows})
    datasets = sorted({row.dataset for row in rows})
    cells = {(r.model, r.dataset): r.best_val_bps for r in rows if r.best_val_bps is not None}
    return models, datasets, cells


def format_table(rows: list[ResultRow]) -> str:
    """The model × dataset table of best validation bits/spike, as plain text."""
    models, datasets, cells = matrix(rows)
    if not rows:
        return "no finished jobs with results"
    width = max([len("model \\ dataset"), *map(len, models)])
    columns = [max(len(d), 8) for d in datasets]
    header = (
        "model \\ dataset".ljust(width)
        + "  "
        + "  ".join(d.rjust(w) for d, w in zip(datasets, columns, strict=True))
    )
    lines = [header]
    for model in models:
        values = [
            (f"{cells[(model, d)]:.4f}" if (model, d) in cells else "-").rjust(w)
            for d, w in zip(datasets, columns, strict=True)
        ]
        lines.append(model.ljust(width) + "  " + "  ".join(values))
    return "\n".join(lines)


def write_csv(rows: list[ResultRow], path: Path) -> None:
    fields = ["job", "model", "dataset", "sweep", "best_val_bps", "final_val_bps", "epochs",
              "wall_time_s"]  # fmt: skip
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: getattr(row, key) for key in fields})


def write_json(rows: list[ResultRow], path: Path) -> None:
    path.write_text(json.dumps([asdict(row) for row in rows], indent=2, sort_keys=True) + "\n")


def plot_heatmap(rows: list[ResultRow], path: Path) -> None:
    """A model × dataset heatmap of best val bits/spike, annotated, as PNG (no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models, datasets, cells = matrix(rows)
    grid = [[cells.get((m, d), math.nan) for d in datasets] for m in models]
    fig, ax = plt.subplots(figsize=(1.6 * len(datasets) + 3, 0.7 * len(models) + 2))
    image = ax.imshow(grid, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(datasets)), datasets, rotation=30, ha="right")
    ax.set_yticks(range(len(models)), models)
    for i, model in enumerate(models):
        for j, dataset in enumerate(datasets):
            if (model, dataset) in cells:
                ax.text(j, i, f"{cells[(model, dataset)]:.3f}", ha="center", va="center",
                        color="white")  # fmt: skip
    fig.colorbar(image, ax=ax, label="best val bits/spike")
    ax.set_title("corejob results: best validation bits/spike")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
