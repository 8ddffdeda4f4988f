"""VisionCore's own dataset configs, run through our ops: the 42-dimensional behaviour of
``multi_basic_120_backimage_history.yaml`` comes out of its op lists, not out of our code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from tests.trainer.data.transforms.sample_sessions import make_context, make_recording
from trainer.data.transforms import (
    affine_stim_codec,
    build_datafilter,
    build_transform,
    resample,
)
from trainer.recordings.session import MissingPct

CONFIGS = Path(__file__).parent / "visioncore_configs"
HISTORY = CONFIGS / "multi_basic_120_backimage_history.yaml"


def eye_trace(steps: int, rng: np.random.Generator) -> np.ndarray:
    """Fixations with drift, joined by fast saccades (degrees)."""
    pos, out, t = np.zeros(2), np.empty((steps, 2), np.float32), 0
    while t < steps:
        fixation = int(rng.integers(40, 120))
        drift = np.cumsum(rng.normal(0, 0.01, (fixation, 2)), axis=0)
        out[t : t + fixation] = (pos + drift)[: steps - t]
        t += fixation
        pos = pos + drift[-1] + rng.normal(0, 3, 2)  # the saccade: a jump within a bin
    return out


def recording_of(config: dict, seed: int = 0):
    rec = make_recording([300, 250, 350], n_units=6, seed=seed)
    rng = np.random.default_rng(seed)
    eyes = eye_trace(rec.n_bins, rng)
    tracked = np.ones(rec.n_bins, dtype=bool)
    tracked[400:440] = False  # one blink in the second trial
    cov = {**rec.covariates, "eyepos": eyes, "dpi_valid": tracked}
    rec = type(rec)(rec.stim_type, 240.0, cov, rec.meta)
    return resample(rec, config["sampling"]["target_rate"])


def context_of(rec, kept):
    cov = rec.covariates
    missing = MissingPct(np.array([0.0, 1e4]), np.full((2, 6), 10.0, np.float32))
    return make_context(
        cov["trial_inds"], cov["dpi_valid"], np.arange(6), kept, missing, 120.0, cov["t_bins"]
    )


def behaviour(config: dict, rec, ctx) -> np.ndarray:
    """Every transform exposed as ``behavior`` with ``concatenate``, joined on the last axis
    in the config's order (VisionCore's ``prepare_data``)."""
    parts = [
        build_transform(spec["ops"], f"{HISTORY.name}: transforms.{name}.ops")(
            rec.covariates[spec["source"]], ctx
        )
        for name, spec in config["transforms"].items()
        if spec.get("expose_as") == "behavior" and spec.get("concatenate")
    ]
    return np.concatenate(parts, axis=-1)


def test_eye_velocity_basis_and_position_make_42_features():
    config = yaml.safe_load(HISTORY.read_text())
    rec = recording_of(config)
    ctx = context_of(rec, kept=[1, 2, 4])
    beh = behaviour(config, rec, ctx)
    steps = rec.n_bins
    assert beh.shape == (steps, 42) and beh.dtype == np.float32
    # 10 cosines x 2 eye axes, split into positive and negative halves, then the position
    positive, negative = beh[:, :20], beh[:, 20:40]
    assert np.all(positive >= 0) and np.all(negative >= 0)
    assert not np.any((positive > 0) & (negative > 0))
    np.testing.assert_array_equal(beh[:, 40:], rec.covariates["eyepos"])
    # the velocity features are the symlog of the peak-normalised velocity, embedded
    velocity = np.diff(rec.covariates["eyepos"], axis=0, prepend=rec.covariates["eyepos"][:1])
    compressed = np.log1p(np.abs(velocity / np.abs(velocity).max())) * np.sign(velocity)
    embedded = build_transform(
        [{"temporal_basis": config["transforms"]["eye_vel"]["ops"][3]["temporal_basis"]}],
        "t: ops",
    )(compressed, ctx)
    np.testing.assert_allclose(positive - negative, embedded, atol=1e-6)
    # an acausal 51-tap window: features move around saccades, stay ~flat in fixations
    quiet = np.abs(compressed).max(axis=1) < 0.05
    calm = np.convolve(quiet, np.ones(51), mode="same") == 51
    assert np.abs(positive - negative)[calm].max() < np.abs(positive - negative).max() / 5


def test_the_other_op_lists_of_that_config_run_as_visioncore_meant():
    config = yaml.safe_load(HISTORY.read_text())
    rec = recording_of(config, seed=1)
    ctx = context_of(rec, kept=[5, 0, 3])
    stim_ops = config["transforms"]["stim"]["ops"]
    stim = build_transform(stim_ops, "s: ops")(rec.covariates["stim"], ctx)
    assert stim.shape == (rec.n_bins, 1, 5, 6)
    assert affine_stim_codec(stim_ops) == (1 / 255, -127 / 255)
    history = build_transform(config["transforms"]["history"]["ops"], "h: ops")(
        rec.covariates["robs"], ctx
    )
    np.testing.assert_array_equal(history, rec.covariates["robs"][:, [5, 0, 3]])
    dfs = build_datafilter(config["datafilters"]["dfs"]["ops"], "d: ops")(rec.covariates, ctx)
    assert dfs.shape == (rec.n_bins, 3)  # valid_nlags (T, 1) & missing_pct (T, 3)
    trials = rec.covariates["trial_inds"]
    for trial in np.unique(trials):
        rows = np.flatnonzero(trials == trial)
        assert not dfs[rows[:32]].any() and dfs[rows[32:], :].any()  # start + 31 after it
    blink = np.flatnonzero(~rec.covariates["dpi_valid"])
    assert blink.size and not dfs[blink[0] : blink[-1] + 32].any()


def test_multi_basic_120_smooths_robs_with_its_list_form_config():
    config = yaml.safe_load((CONFIGS / "multi_basic_120.yaml").read_text())
    rec = recording_of(config, seed=2)
    ctx = context_of(rec, kept=np.arange(6))
    smoothed = build_transform(config["transforms"]["robs"]["ops"], "r: ops")(
        rec.covariates["robs"], ctx
    )
    assert smoothed.shape == rec.covariates["robs"].shape
    assert smoothed.std(axis=0).max() < rec.covariates["robs"].std(axis=0).min()
    assert behaviour(config, rec, ctx).shape == (rec.n_bins, 42)
