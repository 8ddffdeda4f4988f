"""``valid_nlags``, ``missing_pct`` and their AND-combination into ``dfs``."""

from __future__ import annotations

import numpy as np
import pytest

from tests.trainer.data.transforms.sample_sessions import make_context
from trainer.contract.errors import ConfigError
from trainer.data.transforms import build_datafilter
from trainer.recordings.session import MissingPct

WHERE = "d.yaml: datafilters.dfs.ops"


def expected_valid_nlags(trial_inds, dpi_valid, n_lags):
    """Written out: bin t is valid iff bins t-n+1..t exist, none starts a trial, all tracked."""
    out = np.zeros(len(trial_inds), dtype=bool)
    for t in range(len(trial_inds)):
        window = range(t - n_lags + 1, t + 1)
        out[t] = window.start >= 0 and all(
            w > 0 and trial_inds[w] == trial_inds[w - 1] and dpi_valid[w] for w in window
        )
    return out


def test_valid_nlags_drops_trial_starts_their_lags_and_dropouts():
    trial_inds = np.repeat([4, 5, 9], [12, 7, 15])
    dpi_valid = np.ones(34, dtype=bool)
    dpi_valid[[25, 26]] = False
    ctx = make_context(trial_inds, dpi_valid)
    mask = build_datafilter([{"valid_nlags": {"n_lags": 4}}], WHERE)({}, ctx)
    assert mask.shape == (34, 1) and mask.dtype == bool
    np.testing.assert_array_equal(mask[:, 0], expected_valid_nlags(trial_inds, dpi_valid, 4))
    valid = set(np.flatnonzero(mask[:, 0]))
    assert valid == set(range(4, 12)) | set(range(16, 19)) | set(range(23, 25)) | set(
        range(30, 34)
    )  # first bin of each trial + the 3 after it out; dropouts 25, 26 + 3 after each out


def test_valid_nlags_one_lag_only_drops_trial_starts_and_dropouts():
    trial_inds = np.repeat([0, 1], [5, 5])
    dpi_valid = np.array([1, 1, 0, 1, 1, 1, 1, 1, 1, 1], dtype=bool)
    mask = build_datafilter([{"valid_nlags": 1}], WHERE)({}, make_context(trial_inds, dpi_valid))
    np.testing.assert_array_equal(mask[:, 0], [0, 1, 0, 1, 1, 0, 1, 1, 1, 1])


def missing_context(pct_by_unit, kept):
    times = np.array([0.0, 1.0])
    pct = np.array(pct_by_unit, dtype=np.float32).T  # (2 times, N units)
    return make_context(
        np.zeros(121),
        session_cids=[10, 11, 12, 13],
        kept_cids=kept,
        missing=MissingPct(times, pct),
        rate_hz=120.0,
    )


def test_missing_pct_keeps_bins_below_threshold_and_clear_multi_units():
    # unit 10: 0 -> 80 % over the second (median 40); 11: always 10 %;
    # 12: always 80 % (a multi-unit: kept everywhere); 13: 50 -> 30 % (median 40: filtered)
    ctx = missing_context([[0, 80], [10, 10], [80, 80], [50, 30]], kept=[10, 12, 13, 11])
    mask = build_datafilter([{"missing_pct": {"threshold": 45}}], WHERE)({}, ctx)
    assert mask.shape == (121, 4)
    t = ctx.t_bins
    np.testing.assert_array_equal(mask[:, 0], 80 * t < 45)
    assert mask[:, 1].all()  # the multi-unit
    np.testing.assert_array_equal(mask[:, 2], 50 - 20 * t < 45)
    assert mask[:, 3].all()


def test_filters_are_and_combined_with_broadcasting():
    ctx = missing_context([[0, 80], [10, 10], [80, 80], [50, 30]], kept=[10, 11])
    ops = [{"valid_nlags": {"n_lags": 32}}, {"missing_pct": {"threshold": 45}}]
    combined = build_datafilter(ops, WHERE)({}, ctx)
    nlags = build_datafilter(ops[:1], WHERE)({}, ctx)
    missing = build_datafilter(ops[1:], WHERE)({}, ctx)
    assert combined.shape == (121, 2)
    np.testing.assert_array_equal(combined, nlags & missing)
    assert not combined[:32].any() and combined[32:, 1].all()  # trial start + 31 after it


def test_visioncore_misspelt_threshold_applies_what_visioncore_applied():
    ctx = missing_context([[0, 80], [10, 10], [80, 80], [50, 30]], kept=[10])
    misspelt = build_datafilter([{"missing_pct": {"theshold": 45}}], WHERE)({}, ctx)
    default = build_datafilter([{"missing_pct": {}}], WHERE)({}, ctx)
    np.testing.assert_array_equal(misspelt, default)


def test_no_filters_means_every_bin_and_missing_data_is_named():
    assert build_datafilter([], WHERE)({}, make_context(np.zeros(6))).tolist() == [[True]] * 6
    with pytest.raises(ConfigError, match=r"ops\[0\]\.missing_pct: session .* no missing"):
        build_datafilter([{"missing_pct": 45}], WHERE)({}, make_context(np.zeros(6)))
