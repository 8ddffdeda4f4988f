"""Synthetic generator: deterministic from its seed, plausible, with masks and ground truth."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tests.trainer.synthetic.frame_configs import load_frame_config
from trainer.synthetic import generate_dataset, session_spec
from trainer.synthetic.session import dequantize, simulate_session
from trainer.synthetic.store import read_meta

ARRAYS = ("stim", "robs", "dfs", "behavior", "trial_ids", "contrast", "rates")


@pytest.fixture(scope="module")
def tiny_specs():
    cfg = load_frame_config("synthetic_tiny")
    return [session_spec(cfg, s) for s in cfg.sessions]


def test_same_seed_same_arrays_other_seed_different(tiny_specs):
    spec = tiny_specs[0]
    a, b = simulate_session(spec), simulate_session(spec)
    for name in ARRAYS:
        np.testing.assert_array_equal(a.arrays[name], b.arrays[name])
    assert a.meta == b.meta
    c = simulate_session(dataclasses.replace(spec, seed=spec.seed + 1))
    for name in ("stim", "robs", "rates"):
        assert not np.array_equal(a.arrays[name], c.arrays[name])


@pytest.mark.parametrize("stim_type", ["backimage", "gaborium", "gratings"])
def test_every_stimulus_type_gives_usable_sessions(tiny_specs, stim_type):
    spec = dataclasses.replace(tiny_specs[0], stim_type=stim_type, n_units=10)
    out = simulate_session(spec)
    arr, p = out.arrays, spec.params
    n, size = p["n_frames"], p["image_size"]
    assert arr["stim"].shape == (n, size, size) and arr["stim"].dtype == np.uint8
    assert arr["robs"].shape == arr["rates"].shape == arr["dfs"].shape == (n, 10)
    assert arr["behavior"].shape == (n, spec.behavior_dim)
    assert np.isfinite(arr["behavior"]).all()
    # usable spike counts: 0.1-1 spikes/bin on average, every unit fires
    assert 0.1 < arr["rates"].mean() < 1.0 and (arr["robs"].sum(0) > 0).all()
    # stimulus uses the dynamic range and its contrast follows the stored per-frame contrast
    pixels = dequantize(arr["stim"])
    assert pixels.std() > 0.05
    contrast = arr["contrast"]
    lo, hi = p["contrast"]
    assert contrast.min() >= lo and contrast.max() <= hi and contrast.std() > 0.05
    assert np.abs(pixels).reshape(n, -1).max(1).max() <= 1.0


def test_missing_epochs_are_masked(tiny_specs):
    spec = dataclasses.replace(tiny_specs[0], n_units=40)
    arr = simulate_session(spec).arrays
    lost = (arr["dfs"] == 0).any(0)
    assert 0 < lost.sum() < 40  # some units, not all, have a missing epoch
    assert (arr["robs"][arr["dfs"] == 0] == 0).all()
    assert (arr["dfs"].mean(0)[lost] > 0.5).all()  # an epoch, not the whole session


def test_trials_eye_trace_and_saccade_features(tiny_specs):
    out = simulate_session(tiny_specs[0])
    trials = out.arrays["trial_ids"]
    assert (np.diff(trials) >= 0).all() and out.meta["n_trials"] == trials.max() + 1 > 5
    assert out.meta["n_saccades"] > 0
    names = out.meta["behavior_names"]
    assert names[:4] == ["eye_y", "eye_x", "eye_vy", "eye_vx"] and len(names) == 8
    saccade_features = out.arrays["behavior"][:, 4:]
    assert saccade_features.max() > 0.9 and saccade_features.min() == 0.0


def test_units_share_one_gabor_bank_across_sessions(tiny_specs):
    a, b = (simulate_session(s).meta["units"] for s in tiny_specs)
    n_bank = len(tiny_specs[0].params["spatial_freqs"]) * tiny_specs[0].params["n_orientations"]
    assert {u["bank_index"] for u in a + b} <= set(range(n_bank))
    assert {u["type"] for u in a + b} == {"simple", "complex"}
    size = tiny_specs[0].params["image_size"]
    for unit in a + b:  # RFs well inside the frame
        assert all(3 <= c <= size - 4 for c in unit["center_yx"])


def test_realistic_preset_resolves_without_generating():
    """The seed system's scale: >= 20 sessions of 20-180 units, 33 lags at 120 Hz, crops
    larger than the 51 x 51 adapter grid, 42 behavior covariates."""
    cfg = load_frame_config("synthetic_realistic", behavior_dim=42)
    specs = [session_spec(cfg, s) for s in cfg.sessions]
    assert len(specs) >= 20
    units = [spec.n_units for spec in specs]
    assert min(units) == 20 and max(units) == 180
    assert {spec.params["image_size"] for spec in specs} == {64}
    assert {spec.stim_type for spec in specs} == {"backimage", "gaborium", "gratings"}
    spec = specs[0]
    assert spec.params["preset"] == "realistic" and spec.params["n_frames"] == 60000
    assert spec.n_lags == 33 and spec.behavior_dim == 42 and spec.frame_rate_hz == 120
    assert len({str(cfg.session_dir(s)) for s in cfg.sessions}) == len(cfg.sessions)


def test_realistic_preset_generates_at_reduced_length():
    """The full-size code path (blocked gaborium, blocked quantisation) on 2400 frames."""
    cfg = load_frame_config("synthetic_realistic", behavior_dim=42)
    spec = session_spec(cfg, cfg.sessions[1])
    assert spec.stim_type == "gaborium"
    short = dataclasses.replace(spec, n_units=30, params={**spec.params, "n_frames": 2400})
    first, again = simulate_session(short), simulate_session(short)
    arr = first.arrays
    assert arr["stim"].shape == (2400, 64, 64) and arr["behavior"].shape == (2400, 42)
    assert 0.05 < arr["rates"].mean() < 1.0 and np.isfinite(arr["rates"]).all()
    for name in ARRAYS:
        np.testing.assert_array_equal(arr[name], again.arrays[name])


def test_parallel_generation_writes_the_serial_bytes(tmp_path):
    """Sessions generated by worker processes are the sessions one process generates."""
    serial = load_frame_config("synthetic_tiny", data_root=tmp_path / "serial")
    parallel = load_frame_config("synthetic_tiny", data_root=tmp_path / "parallel")
    a = generate_dataset(serial, workers=1)
    b = generate_dataset(parallel, workers=2)
    for one, other in zip(a, b, strict=True):
        assert one.name == other.name
        assert read_meta(one)["arrays"] == read_meta(other)["arrays"]  # sizes and sha256
    assert generate_dataset(parallel, workers=2) == b  # complete: nothing regenerated
