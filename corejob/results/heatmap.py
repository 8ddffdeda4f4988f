"""``corejob results --plot``: a model x dataset heatmap that can be read at a glance.

White labels on viridis's yellow end were unreadable, ``-0.000`` read as a score below
zero, the metric and the sweep were unnamed, and every run overwrote ``results.png``.
Here each label's colour is chosen by the luminance of the cell behind it (the higher
WCAG contrast of black or white), numbers never print a signed zero, the title names the
metric and the sweep, cells without a number say why (failed, running, no oracle) and
flagged cells are marked (under-trained, oversubscribed, not comparable) with a footnote
each; the default file name carries the sweep id, one file
per sweep.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from corejob.results.collect import ResultRow
from corejob.results.table import (
    DEFAULT_MIN_STEPS,
    METRIC,
    NO_RESULT,
    NOT_COMPARABLE,
    OVERSUBSCRIBED,
    UNDER_TRAINED,
    TableEntry,
    build_table,
    fixed,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# --plot-metric -> (ResultRow field, what the number is)
PLOT_METRICS = {
    "best": ("best_val_bps", f"best {METRIC}"),
    "final": ("final_val_bps", f"final {METRIC}"),
    "ratio": ("oracle_ratio", f"final / oracle {METRIC}"),
}
MISSING_COLOUR = "#d9d9d9"  # cells without a number: light grey, dark label
DARK, LIGHT = "#000000", "#ffffff"
# A flagged cell's mark and its footnote: its number is shown, but not as a peer's.
FLAG_MARKS = {
    UNDER_TRAINED: ("*", "under-trained: fewer than {min_steps} training steps"),
    OVERSUBSCRIBED: ("‡", "oversubscribed: more training processes than CPU cores"),
    NOT_COMPARABLE: (
        "†",
        "not comparable: other training limits than most cells (corejob results lists them)",
    ),
}


def default_plot_path(sweep: str | None) -> Path:
    """``results-<sweep>.png``; ``results.png`` for jobs outside any sweep."""
    return Path(f"results-{sweep}.png") if sweep else Path("results.png")


def plot_files(rows: Sequence[ResultRow], path: Path | None) -> dict[Path, list[ResultRow]]:
    """What to draw where: everything into ``path`` when given, else one file per sweep."""
    if path is not None:
        return {path: list(rows)}
    files: dict[Path, list[ResultRow]] = {}
    for row in rows:
        files.setdefault(default_plot_path(row.sweep), []).append(row)
    return files


def relative_luminance(rgb: Sequence[float]) -> float:
    """WCAG 2 relative luminance of an sRGB colour with channels in 0..1."""
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb[:3]]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(first: Sequence[float], second: Sequence[float]) -> float:
    """WCAG contrast ratio, 1 (none) to 21 (black on white)."""
    high, low = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def label_colour(background: Sequence[float]) -> str:
    """Black or white, whichever contrasts more with ``background``."""
    dark = contrast_ratio(background, (0.0, 0.0, 0.0))
    return DARK if dark >= contrast_ratio(background, (1.0, 1.0, 1.0)) else LIGHT


def cell_label(entry: TableEntry | None, field: str, metric: str) -> tuple[float, str]:
    """(value to colour, or NaN; the text in the cell)."""
    if entry is None:
        return math.nan, "no run"
    row = entry.row
    if not row.succeeded:
        return math.nan, row.state.lower()
    if NO_RESULT in entry.flags:
        return math.nan, "no result"
    value = getattr(row, field)
    if value is None:
        return math.nan, "no oracle" if metric == "ratio" else "-"
    marks = "".join(mark for flag, (mark, _) in FLAG_MARKS.items() if flag in entry.flags)
    return value, f"{fixed(value, 3)} {marks}".rstrip()


def colour_range(values: Sequence[float]) -> tuple[float, float]:
    """The colour scale's (low, high): the numbers' range, widened to 0.1 around a single
    value (one cell, or all equal), so its ticks are round numbers, not a 1e-9 sliver."""
    finite = [value for value in values if not math.isnan(value)]
    if not finite:
        return 0.0, 1.0
    low, high = min(finite), max(finite)
    return (low - 0.05, high + 0.05) if high - low < 1e-6 else (low, high)


def scope_of(rows: Sequence[ResultRow]) -> str:
    sweeps = sorted({row.sweep or "" for row in rows})
    if sweeps == [""]:
        return "jobs outside sweeps"
    if len(sweeps) == 1:
        return f"sweep {sweeps[0]}"
    return "sweeps " + ", ".join(s or "(none)" for s in sweeps)


def heatmap_figure(
    rows: Sequence[ResultRow], metric: str = "best", min_steps: int = DEFAULT_MIN_STEPS
) -> Figure:
    """The heatmap of the latest run per cell, as a matplotlib figure (Agg, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize, to_rgb

    field, name = PLOT_METRICS[metric]
    entries = {(e.row.model, e.row.dataset): e for e in build_table(rows, min_steps)}
    models = sorted({model for model, _ in entries})
    datasets = sorted({dataset for _, dataset in entries})
    cells = {(m, d): cell_label(entries.get((m, d)), field, metric) for m in models
             for d in datasets}  # fmt: skip
    grid = [[cells[(m, d)][0] for d in datasets] for m in models]
    cmap = plt.get_cmap("viridis").with_extremes(bad=MISSING_COLOUR)
    norm = Normalize(*colour_range([value for value, _ in cells.values()]))
    fig, ax = plt.subplots(figsize=(1.6 * len(datasets) + 3.5, 0.7 * len(models) + 2.2))
    image = ax.imshow(grid, cmap=cmap, norm=norm, aspect="auto")
    ax.set_xticks(range(len(datasets)), datasets, rotation=30, ha="right")
    ax.set_yticks(range(len(models)), models)
    ax.set_xlabel("dataset")
    ax.set_ylabel("model")
    for i, model in enumerate(models):
        for j, dataset in enumerate(datasets):
            value, text = cells[(model, dataset)]
            background = cmap(norm(value)) if not math.isnan(value) else MISSING_COLOUR
            colour = label_colour(to_rgb(background))
            ax.text(j, i, text, ha="center", va="center", color=colour, fontsize=10)
    bar = fig.colorbar(image, ax=ax, label=f"{name}\n(higher is better)")
    bar.formatter.set_useOffset(False)  # "1e-10+7.2e-1" ticks say nothing
    ax.set_title(f"{name} — {scope_of(rows)}\nlatest run per cell", fontsize=11)
    flagged = {flag for e in entries.values() if e.row.succeeded for flag in e.flags}
    notes = [f"{mark} {words.format(min_steps=min_steps)}"
             for flag, (mark, words) in FLAG_MARKS.items() if flag in flagged]  # fmt: skip
    if notes:
        fig.text(0.01, 0.01, "\n".join(notes), fontsize=8)
    fig.tight_layout()
    return fig


def plot_heatmap(
    rows: Sequence[ResultRow],
    path: Path,
    metric: str = "best",
    min_steps: int = DEFAULT_MIN_STEPS,
) -> None:
    """Write the heatmap of ``rows`` to ``path`` as PNG."""
    import matplotlib.pyplot as plt

    fig = heatmap_figure(rows, metric, min_steps)
    try:
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
