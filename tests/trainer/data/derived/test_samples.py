"""Samples under VisionCore's keys_lags: lag order, trial-bounded bins, split by trials."""

from __future__ import annotations

import numpy as np
import torch

from tests.trainer.data.derived.conftest import HISTORY_CONFIG
from trainer.data.derived.cache import DerivedSession, ensure_derived
from trainer.data.derived.samples import (
    LaggedSessionDataset,
    max_lag,
    sample_bins,
    split_samples,
)


def derived(raw_folder, fields) -> DerivedSession:
    return DerivedSession(ensure_derived(raw_folder, fields, "uint8", str(HISTORY_CONFIG)))


def test_a_sample_holds_each_key_at_t_minus_lag_in_the_listed_order(raw_folder, history_fields):
    session = derived(raw_folder, history_fields)
    lags = history_fields["keys_lags"]
    bins = sample_bins(session.array("trial_ids"), session.array("dfs"), max_lag(lags))
    dataset = LaggedSessionDataset(session, bins, lags, dataset_idx=3)
    picked = np.asarray([0, 5, len(bins) - 1])
    batch = dataset.fetch(picked)
    t = bins[picked]
    stim, history = session.array("stim"), session.array("history")
    assert batch["stim"].shape == (3, 1, 33, *stim.shape[1:]) and batch["stim"].dtype == torch.uint8
    for i, ti in enumerate(t):
        for k in range(33):  # index 0 = the current bin
            np.testing.assert_array_equal(batch["stim"][i, 0, k].numpy(), stim[ti - k])
        for j, lag in enumerate([1, 2, 3, 4, 5]):
            np.testing.assert_array_equal(batch["history"][i, j].numpy(), history[ti - lag])
    np.testing.assert_array_equal(batch["robs"].numpy(), session.array("robs")[t])
    np.testing.assert_array_equal(batch["behavior"].numpy(), session.array("behavior")[t])
    assert batch["history"].shape == (3, 5, 6) and batch["behavior"].shape == (3, 42)
    assert batch["dfs"].dtype == torch.uint8 and batch["dfs"].shape == (3, 6)
    one = dataset[5]
    assert one["dataset_idx"] == 3 and one["stim"].shape == (1, 33, *stim.shape[1:])


def test_sample_bins_stay_inside_their_trial_and_the_mask() -> None:
    trials = np.repeat([0, 1, 2], [5, 3, 6])
    dfs = np.ones((14, 2), dtype=np.uint8)
    dfs[12] = 0  # no unit valid: not a sample
    dfs[11, 0] = 0  # one unit valid: a sample
    bins = sample_bins(trials, dfs, deepest=2)
    # trial 0: bins 2-4; trial 1 (5-7): 7; trial 2 (8-13): 10, 11, 13
    np.testing.assert_array_equal(bins, [2, 3, 4, 7, 10, 11, 13])


def test_the_split_keeps_trials_whole_per_stimulus_type(raw_folder, history_fields) -> None:
    session = derived(raw_folder, history_fields)
    trial_ids = session.array("trial_ids")
    bins = sample_bins(trial_ids, session.array("dfs"), 32)
    train, val = split_samples(session, bins, 0.8, seed=1002)
    assert np.array_equal(np.sort(np.concatenate([train, val])), bins)
    assert not set(trial_ids[train]) & set(trial_ids[val])
    for segment in session.meta["segments"]:
        inside = (train >= segment["start"]) & (train < segment["stop"])
        trials = np.unique(trial_ids[segment["start"] : segment["stop"]])
        n_train = len(set(trial_ids[train[inside]]))
        assert n_train <= int(len(trials) * 0.8) and n_train >= 1  # 80 % of each type's trials
    again = split_samples(session, bins, 0.8, seed=1002)
    assert np.array_equal(again[0], train)
    other = split_samples(session, bins, 0.8, seed=7)
    assert not np.array_equal(other[0], train)


def test_contrast_scores_average_the_stimulus_lags(raw_folder, history_fields) -> None:
    session = derived(raw_folder, history_fields)
    bins = np.asarray([40, 100])
    dataset = LaggedSessionDataset(session, bins, history_fields["keys_lags"], 0)
    per_bin = session.array("contrast")
    expected = [per_bin[b - np.arange(33)].mean() for b in bins]
    np.testing.assert_allclose(dataset.contrast(), expected, rtol=1e-6)
    stim = session.array("stim")[40].astype(np.float32)
    assert np.isclose(per_bin[40], stim.std())
