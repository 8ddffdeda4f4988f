"""Plots: curves from history.json or metrics.csv, ground-truth RFs from generator files."""

import json

import numpy as np
import pytest

from trainer.contract.errors import ConfigError
from trainer.plots import ground_truth_rfs, plot_run, read_history, read_steps

HISTORY = [
    {"epoch": 0, "train_loss": 0.9, "val_loss": 0.8, "val_bps_overall": 0.1, "val_bps/a": 0.1},
    {"epoch": 1, "train_loss": 0.7, "val_loss": 0.6, "val_bps_overall": 0.3, "val_bps/a": 0.3},
]


def test_curves_from_history_json(tmp_path):
    (tmp_path / "history.json").write_text(json.dumps(HISTORY))
    (tmp_path / "metrics.json").write_text(json.dumps({"oracle_bps": {"a": 0.9}}))
    paths = plot_run(tmp_path)
    assert [p.name for p in paths] == ["curves.png"]
    assert paths[0].stat().st_size > 10_000


def test_history_falls_back_to_metrics_csv(tmp_path):
    (tmp_path / "metrics.csv").write_text(
        "epoch,step,train_loss,val_bps_overall\n0,10,0.9,\n0,10,,0.2\n1,20,0.7,\n1,20,,0.4\n"
    )
    history = read_history(tmp_path)
    assert [(r["epoch"], r["val_bps_overall"]) for r in history] == [(0, 0.2), (1, 0.4)]


def test_not_a_run_directory(tmp_path):
    with pytest.raises(ConfigError, match="no such run directory"):
        plot_run(tmp_path / "missing")
    with pytest.raises(ConfigError, match="not a run"):
        plot_run(tmp_path)


def test_ground_truth_rfs_peak_at_the_stored_unit_centres(tiny_data):
    raw = tiny_data / "synthetic_raw"
    session = next(p for p in raw.iterdir() if p.name.startswith("tiny") and p.is_dir())
    manifest = json.loads((session / "session.json").read_text())
    units = manifest["info"]["units"]
    rfs = ground_truth_rfs(session)
    assert rfs.shape[0] == len(manifest["cids"]) == len(units)
    for rf, unit in zip(rfs, units, strict=True):
        peak = np.unravel_index(np.abs(rf).argmax(), rf.shape)
        assert np.hypot(*(np.asarray(peak) - unit["center_yx"])) < 3.0
    kept = manifest["cids"][::-2]  # a dataset config's cids pick and order the units
    np.testing.assert_array_equal(ground_truth_rfs(session, kept), rfs[::-2])


def test_step_curves_from_metrics_csv(tmp_path):
    """Within one epoch the per-step plot has lines: every logged step is a point."""
    (tmp_path / "metrics.csv").write_text(
        "epoch,step,train_loss_step,val_bps_overall,val_bps/a\n"
        + "".join(f"0,{s},{1 / (s + 1)},,\n" for s in range(0, 40, 10))
        + "0,39,,0.2,0.25\n"
    )
    rows = read_steps(tmp_path)
    assert [r["step"] for r in rows if "train_loss_step" in r] == [0, 10, 20, 30]
    assert [p.name for p in plot_run(tmp_path)] == ["curves.png", "steps.png"]
