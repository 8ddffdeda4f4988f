"""``resample``: 240 -> 120 Hz sums spikes, decimates stim, averages the rest, and never
lets a target bin straddle two trials."""

from __future__ import annotations

import numpy as np
import pytest

from tests.trainer.data.transforms.sample_sessions import make_recording
from trainer.contract.errors import ConfigError
from trainer.data.transforms import resample


def test_240_to_120_sums_spikes_within_each_trial_and_drops_odd_tails():
    rec = make_recording([9, 6, 5])  # odd trials: their last bin has no partner
    out = resample(rec, 120)
    src = rec.covariates
    assert out.source_rate == 120.0 and out.meta["source_rate"] == 120.0
    starts = [0, 2, 4, 6, 9, 11, 13, 15, 17]  # trial 10: 0..7 (8 dropped); 11: 9..14; 12: 15..18
    assert out.n_bins == len(starts)
    for i, s in enumerate(starts):
        np.testing.assert_array_equal(
            out.covariates["robs"][i], src["robs"][s] + src["robs"][s + 1]
        )
        np.testing.assert_allclose(
            out.covariates["rates"][i], src["rates"][s] + src["rates"][s + 1], rtol=1e-6
        )
        np.testing.assert_array_equal(out.covariates["stim"][i], src["stim"][s])
        np.testing.assert_allclose(out.covariates["eyepos"][i], src["eyepos"][s : s + 2].mean(0))
        assert out.covariates["t_bins"][i] == pytest.approx(src["t_bins"][s : s + 2].mean())
        assert out.covariates["dpi_valid"][i] == (src["dpi_valid"][s] and src["dpi_valid"][s + 1])
        assert out.covariates["trial_inds"][i] == src["trial_inds"][s] == src["trial_inds"][s + 1]
    assert out.covariates["robs"].dtype == np.float32 and out.covariates["stim"].dtype == np.uint8
    assert out.covariates["trial_inds"].dtype == np.int64
    assert out.covariates["dpi_valid"].dtype == bool


def test_no_target_bin_spans_two_trials_and_spikes_within_whole_groups_are_kept():
    lengths = [7, 12, 3, 1, 10, 8]
    rec = make_recording(lengths, seed=2)
    for rate in (120, 60, 80):
        factor = 240 // rate
        out = resample(rec, rate)
        trials = rec.covariates["trial_inds"]
        kept = sum(n // factor for n in lengths)
        assert out.n_bins == kept
        total = 0.0
        for trial, n in zip(np.unique(trials), lengths, strict=True):
            rows = out.covariates["trial_inds"] == trial
            assert rows.sum() == n // factor
            src = rec.covariates["robs"][trials == trial][: (n // factor) * factor]
            np.testing.assert_array_equal(out.covariates["robs"][rows].sum(0), src.sum(0))
            total += src.sum()
        assert out.covariates["robs"].sum() == total


def test_a_gap_in_time_inside_a_trial_also_ends_a_group():
    rec = make_recording([8])
    t_bins = rec.covariates["t_bins"].copy()
    t_bins[3:] += 1.0  # the tracker or the recording paused after bin 2
    rec = type(rec)(rec.stim_type, 240.0, {**rec.covariates, "t_bins": t_bins}, rec.meta)
    out = resample(rec, 120)
    assert out.n_bins == 1 + 2  # bins 0-1 | (2 dropped) | 3-4, 5-6 | (7 dropped)
    np.testing.assert_allclose(np.diff(out.covariates["t_bins"]), [1.0 + 3 / 240, 2 / 240])


def test_the_same_rate_returns_the_recording_and_a_non_divisor_is_refused():
    rec = make_recording([4])
    assert resample(rec, 240) is rec
    with pytest.raises(ConfigError, match=r"^a\.yaml: sampling\.target_rate: 100 Hz must divide"):
        resample(rec, 100, "a.yaml: sampling")
    with pytest.raises(ConfigError, match="target_rate: must be > 0"):
        resample(rec, 0)
