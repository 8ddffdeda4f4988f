"""``temporal_basis``: raised cosines with the stated peaks, causal and centred windows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.trainer.data.transforms.sample_sessions import make_context
from trainer.data.transforms import build_transform
from trainer.data.transforms.bases import raised_cosine_basis

# VisionCore's eye-velocity basis (every multi_basic_* config).
EYE_BASIS = {
    "num_delta_funcs": 0,
    "num_cosine_funcs": 10,
    "history_bins": 50,
    "causal": False,
    "log_spacing": False,
    "peak_range_ms": [30, 200],
    "normalize": True,
}
RNG = np.random.default_rng(5)


def run(params, x):
    return build_transform([{"temporal_basis": params}], "d.yaml: t.ops")(
        x, make_context(np.zeros(x.shape[0]))
    )


def test_linear_cosines_have_the_stated_peaks_and_width():
    basis = raised_cosine_basis(0, 10, 50, log_spacing=False, peak_range_ms=(30, 200))
    assert basis.shape == (10, 51)
    t = np.arange(50) * 5.0  # VisionCore's kernel time axis: bin_size_ms = 5
    width = 2 * (200 - 30) / 9
    for i, peak in enumerate(np.linspace(30, 200, 10)):
        arg = (t - peak) * math.pi / width
        row = np.where(np.abs(arg) <= math.pi, (1 + np.cos(arg)) / 2, 0.0)
        expected = np.concatenate([[0.0], row])  # the zero lag-0 column
        np.testing.assert_allclose(basis[i], expected / np.linalg.norm(expected), atol=1e-12)
        assert np.argmax(basis[i]) == 1 + round(peak / 5)  # peak at t = 5 ms * (column - 1)


def test_log_cosines_peak_at_log_spaced_times():
    basis = raised_cosine_basis(0, 6, 32, log_spacing=True, peak_range_ms=(5, 60))
    t = np.arange(32) * 5.0
    logs = np.linspace(math.log(5), math.log(60), 6)
    width = 2 * (logs[1] - logs[0])
    for i, log_peak in enumerate(logs):
        arg = (np.log(t + 1e-6) - log_peak) * math.pi / width
        row = np.where(np.abs(arg) <= math.pi, (1 + np.cos(arg)) / 2, 0.0)
        expected = np.concatenate([[0.0], row])
        np.testing.assert_allclose(basis[i], expected / np.linalg.norm(expected), atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(basis, axis=1), 1.0)


def test_causal_basis_output_is_the_past_weighted_by_the_basis_and_never_the_future():
    params = {**EYE_BASIS, "causal": True, "history_bins": 12, "num_cosine_funcs": 3}
    basis = raised_cosine_basis(0, 3, 12, log_spacing=False, peak_range_ms=(30, 200))
    x = RNG.normal(size=(40, 1)).astype(np.float32)
    y = run(params, x)
    for t in range(40):
        want = [sum(basis[b, j] * x[t - j, 0] for j in range(13) if t - j >= 0) for b in range(3)]
        np.testing.assert_allclose(y[t], want, atol=1e-5)
    impulse = np.zeros((30, 1), np.float32)
    impulse[10] = 1.0
    response = run(params, impulse)
    assert np.all(response[:11] == 0)  # nothing at or before the impulse
    assert np.any(response[11:] != 0)


def test_acausal_basis_uses_a_window_centred_on_each_bin():
    x = RNG.normal(size=(80, 1)).astype(np.float32)
    basis = raised_cosine_basis(0, 10, 50, log_spacing=False, peak_range_ms=(30, 200))
    y = run(EYE_BASIS, x)
    half = 51 // 2
    for t in (0, 30, 79):
        want = [
            sum(basis[b, j] * x[t + j - half, 0] for j in range(51) if 0 <= t + j - half < 80)
            for b in range(10)
        ]
        np.testing.assert_allclose(y[t], want, atol=1e-5)


def test_deltas_copy_the_signal_at_lags_one_and_two():
    params = {"num_delta_funcs": 2, "num_cosine_funcs": 0, "history_bins": 4}
    x = np.arange(1, 9, dtype=np.float32)[:, None]
    y = run(params, x)
    np.testing.assert_array_equal(y[:, 0], np.concatenate([[0], x[:-1, 0]]))
    np.testing.assert_array_equal(y[:, 1], np.concatenate([[0, 0], x[:-2, 0]]))


def test_channels_are_grouped_per_input_channel():
    x = RNG.normal(size=(60, 2)).astype(np.float32)
    both = run(EYE_BASIS, x)
    assert both.shape == (60, 20)
    np.testing.assert_allclose(both[:, :10], run(EYE_BASIS, x[:, :1]), atol=1e-6)
    np.testing.assert_allclose(both[:, 10:], run(EYE_BASIS, x[:, 1:]), atol=1e-6)


def test_a_movie_becomes_basis_channels_per_pixel():
    params = {"num_cosine_funcs": 6, "history_bins": 32, "peak_range_ms": [5, 60]}
    movie = RNG.normal(size=(40, 3, 4)).astype(np.float32)
    out = run(params, movie)
    assert out.shape == (40, 6, 3, 4)
    np.testing.assert_allclose(out[:, :, 2, 1], run(params, movie[:, 2, 1:2]), atol=1e-6)


def test_batch_norm_standardises_each_basis_output():
    params = {"num_cosine_funcs": 4, "history_bins": 16, "batch_norm": True}
    movie = RNG.normal(2.0, 3.0, size=(50, 3, 3)).astype(np.float32)
    out = run(params, movie)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(out.var(axis=(0, 2, 3)), 1, atol=1e-3)


def test_orthogonalized_basis_is_orthonormal():
    basis = raised_cosine_basis(1, 5, 20, orthogonalize=True)
    np.testing.assert_allclose(basis @ basis.T, np.eye(6), atol=1e-10)


@pytest.mark.parametrize("shape", [(10,), (10, 1, 2, 2)])
def test_other_ranks_are_refused(shape):
    with pytest.raises(Exception, match=r"d\.yaml: t\.ops\[0\]\.temporal_basis: expects"):
        run({}, np.zeros(shape, np.float32))
