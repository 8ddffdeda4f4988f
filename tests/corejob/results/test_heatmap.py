"""The results heatmap, rendered with Agg: label contrast checked on the pixels drawn."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.image
import matplotlib.pyplot as plt
from matplotlib.colors import to_rgb

from corejob.results.collect import ResultRow
from corejob.results.heatmap import (
    MISSING_COLOUR,
    contrast_ratio,
    heatmap_figure,
    plot_files,
    plot_heatmap,
)

BASE = ResultRow(job="a", model="res_small", dataset="synthetic_mixed", sweep="s1",
                 state="Succeeded", created="2025-01-01T00:00:00Z", best_val_bps=0.6,
                 final_val_bps=0.59, oracle_bps=0.8, oracle_ratio=0.74, global_step=1000,
                 result={"global_step": 1000})  # fmt: skip
# viridis's yellow end (the highest), its dark purple (the lowest), under-trained, failed
ROWS = [
    BASE,
    replace(BASE, job="b", dataset="synthetic_tiny", best_val_bps=-0.00004, final_val_bps=0.0,
            oracle_bps=None, oracle_ratio=None),
    replace(BASE, job="c", model="res_gru", best_val_bps=0.3, global_step=40),
    replace(BASE, job="d", model="res_gru", dataset="synthetic_tiny", state="Failed", result={},
            best_val_bps=None),
]  # fmt: skip


@pytest.fixture
def figure():
    figures = []

    def draw(rows=ROWS, metric="best"):
        fig = heatmap_figure(rows, metric)
        fig.canvas.draw()
        figures.append(fig)
        return fig

    yield draw
    for fig in figures:
        plt.close(fig)


def labels(fig) -> dict[tuple[int, int], matplotlib.text.Text]:
    """(row, column) of the grid -> the text drawn in that cell."""
    return {(round(t.get_position()[1]), round(t.get_position()[0])): t for t in fig.axes[0].texts}


def background(fig, row: int, col: int) -> tuple[float, float, float]:
    image = fig.axes[0].images[0]
    value = np.ma.masked_invalid(image.get_array())[row, col]
    if value is np.ma.masked:
        return to_rgb(MISSING_COLOUR)
    return to_rgb(image.cmap(image.norm(value)))


def test_every_label_contrasts_with_its_cell_on_the_rendered_pixels(figure):
    fig = figure()
    pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3] / 255.0
    height = pixels.shape[0]
    renderer = fig.canvas.get_renderer()
    for (row, col), text in labels(fig).items():
        colour, cell = to_rgb(text.get_color()), background(fig, row, col)
        assert contrast_ratio(colour, cell) >= 4.5, (text.get_text(), colour, cell)
        box = text.get_window_extent(renderer)
        crop = pixels[int(height - box.y1) : int(height - box.y0), int(box.x0) : int(box.x1)]
        distance = np.abs(crop - np.array(colour)).sum(axis=-1)
        assert (distance < 0.15).sum() >= 10, f"{text.get_text()!r} not drawn in {colour}"
    cells = labels(fig)
    assert cells[(1, 0)].get_text() == "0.600" and to_rgb(cells[(1, 0)].get_color()) == (0, 0, 0)
    assert cells[(1, 1)].get_text() == "0.000"  # -0.00004: no signed zero
    assert to_rgb(cells[(1, 1)].get_color()) == (1, 1, 1)  # white on dark purple


def test_failed_and_under_trained_cells_are_marked(figure):
    fig = figure()
    cells = labels(fig)
    assert cells[(0, 0)].get_text() == "0.300 *"
    assert cells[(0, 1)].get_text() == "failed"
    assert background(fig, 0, 1) == to_rgb(MISSING_COLOUR)
    footnotes = [t.get_text() for t in fig.texts]
    assert footnotes == ["* under-trained: fewer than 100 training steps"]


def test_the_title_names_the_metric_and_the_sweep(figure):
    title = figure().axes[0].get_title()
    assert title.startswith("best val bits/spike — sweep s1")
    ratio = figure(metric="ratio")
    assert ratio.axes[0].get_title().startswith("final / oracle val bits/spike — sweep s1")
    cells = labels(ratio)
    assert cells[(1, 0)].get_text() == "0.740" and cells[(1, 1)].get_text() == "no oracle"
    final = figure(metric="final")
    assert labels(final)[(1, 0)].get_text() == "0.590"
    assert "final val bits/spike" in final.axes[1].get_ylabel()  # the colour bar


def test_one_file_per_sweep_unless_a_path_is_given(tmp_path: Path):
    other = replace(BASE, job="x", sweep="s2")
    loose = replace(BASE, job="y", sweep=None)
    files = plot_files([BASE, other, loose], None)
    assert {path: [r.job for r in rows] for path, rows in files.items()} == {
        Path("results-s1.png"): ["a"],
        Path("results-s2.png"): ["x"],
        Path("results.png"): ["y"],
    }
    assert list(plot_files([BASE, other], tmp_path / "mine.png")) == [tmp_path / "mine.png"]
    plot_heatmap(ROWS, tmp_path / "mine.png")
    image = matplotlib.image.imread(tmp_path / "mine.png")
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 200
    assert not math.isnan(float(image.mean()))


def test_oversubscribed_and_not_comparable_cells_are_marked(figure):
    limits = {"time_budget_minutes": 5.0, "time_budget_clock": "wall", "cores": 2}
    rows = [
        replace(BASE, result={"global_step": 1000, "training_limits": limits}),
        replace(BASE, job="b", dataset="synthetic_tiny",
                result={"global_step": 1000, "training_limits": limits,
                        "cpu_oversubscribed": True}),
        replace(BASE, job="c", model="res_gru",
                result={"global_step": 1000, "training_limits": dict(limits, cores=8)}),
    ]  # fmt: skip
    fig = figure(rows)
    cells = labels(fig)
    assert cells[(1, 0)].get_text() == "0.600"
    assert cells[(1, 1)].get_text() == "0.600 ‡"
    assert cells[(0, 0)].get_text() == "0.600 †"
    (footnotes,) = [t.get_text() for t in fig.texts]
    assert footnotes.splitlines() == [
        "‡ oversubscribed: more training processes than CPU cores",
        "† not comparable: other training limits than most cells (corejob results lists them)",
    ]


def test_a_single_cell_has_a_readable_colour_bar(figure):
    fig = figure([BASE])
    bar = fig.axes[1]
    assert bar.yaxis.get_offset_text().get_text() == ""  # no "1e-10+7.2e-1"
    low, high = bar.get_ylim()
    assert low < 0.6 < high and high - low > 0.05
    renderer = fig.canvas.get_renderer()
    label = bar.yaxis.label.get_window_extent(renderer)
    assert label.x1 <= fig.bbox.width  # the metric's name is not cut off
    assert bar.yaxis.label.get_text() == "best val bits/spike\n(higher is better)"
