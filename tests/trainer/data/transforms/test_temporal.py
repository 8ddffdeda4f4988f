"""``smooth``, ``dacones`` and ``fftwhitening`` against formulas written out here."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.trainer.data.transforms.sample_sessions import make_context
from trainer.contract.errors import ConfigError
from trainer.data.transforms import build_transform
from trainer.data.transforms.temporal import gaussian_kernel

RNG = np.random.default_rng(11)


def run(ops, x):
    return build_transform(ops, "d.yaml: transforms.robs.ops")(x, make_context(np.zeros(len(x))))


@pytest.mark.parametrize("sigma", [0.5, 1.0, 1.5, 2.7])
def test_gaussian_kernel_is_odd_centred_and_sums_to_one(sigma):
    kernel = gaussian_kernel(sigma)
    assert kernel.size % 2 == 1 and kernel.size >= int(6 * sigma) + 1
    assert kernel.sum() == pytest.approx(1.0)
    offsets = np.arange(kernel.size) - kernel.size // 2
    ratio = np.exp(-0.5 * (offsets / sigma) ** 2)
    np.testing.assert_allclose(kernel, ratio / ratio.sum())


def test_smooth_is_a_reflected_gaussian_convolution_over_time():
    robs = RNG.poisson(2.0, (30, 3)).astype(np.float32)
    sigma = 1.0
    kernel = gaussian_kernel(sigma)
    half = kernel.size // 2
    padded = np.pad(robs.astype(np.float64), ((half, half), (0, 0)), mode="reflect")
    expected = np.stack([np.convolve(padded[:, n], kernel, mode="valid") for n in range(3)], axis=1)
    np.testing.assert_allclose(run([{"smooth": {"params": sigma}}], robs), expected, rtol=1e-5)
    # VisionCore's list form (multi_basic_120.yaml) and scalar shorthand mean the same
    listed = run([{"smooth": [{"type": "gaussian"}, {"params": 1.0}]}], robs)
    np.testing.assert_array_equal(listed, run([{"smooth": 1.0}], robs))
    np.testing.assert_allclose(listed.sum(axis=0), robs.sum(axis=0), rtol=0.05)


def test_smooth_zero_sigma_is_identity_and_too_short_input_is_named():
    robs = RNG.normal(size=(5, 2)).astype(np.float32)
    np.testing.assert_array_equal(run([{"smooth": 0}], robs), robs)
    with pytest.raises(ConfigError, match=r"ops\[0\]\.smooth: sigma 3"):
        run([{"smooth": 3}], robs)


def gamma_filter(tau_ms: float, n: float, length: int, rate: float) -> np.ndarray:
    tau = tau_ms / 1000 * rate
    t = np.arange(length, dtype=np.float64)
    return t**n * np.exp(-t / tau) / (tau ** (n + 1) * math.gamma(n + 1))


def test_dacones_divides_the_fast_response_by_the_adapting_one():
    cfg = {"alpha": 0.01, "beta": 0.00008, "gamma": 0.5, "tau_y_ms": 5.0, "tau_z_ms": 60.0}
    cfg |= {"n_y": 5.0, "n_z": 2.0, "filter_length": 32, "learnable_params": False}
    movie = RNG.uniform(0, 255, (60, 2, 3)).astype(np.float32)
    out = run([{"dacones": cfg}], movie)
    assert out.shape == (60, 1, 2, 3) and out.dtype == np.float32
    k_y = gamma_filter(5.0, 5.0, 32, 240.0)
    k_z = 0.5 * k_y + 0.5 * gamma_filter(60.0, 2.0, 32, 240.0)
    trace = movie[:, 1, 2].astype(np.float64)
    y = np.convolve(trace, k_y)[:60]  # causal: y[t] = sum_j k[j] x[t - j]
    z = np.convolve(trace, k_z)[:60]
    np.testing.assert_allclose(out[:, 0, 1, 2], 0.01 * y / (1 + 0.00008 * z), rtol=1e-4)
    assert np.all(out[0] == 0)  # Ky(0) = 0: no response at the first frame


def test_fftwhitening_applies_the_radial_filter_to_the_3d_spectrum():
    movie = RNG.normal(size=(12, 8, 10)).astype(np.float32)
    f_0, n = 0.3, 6
    f = np.meshgrid(*(np.fft.fftfreq(s) for s in movie.shape), indexing="ij")
    radial = np.sqrt(sum(g**2 for g in f))
    gain = radial * np.exp(-((radial / f_0) ** n))
    expected = np.real(np.fft.ifftn(np.fft.fftn(movie) * gain))
    out = run([{"fftwhitening": {"f_0": f_0, "n": n}}], movie)
    assert out.dtype == np.float32 and out.shape == movie.shape
    np.testing.assert_allclose(out, expected, atol=1e-5)
    with_channel = run([{"fftwhitening": {}}], movie[:, None])
    np.testing.assert_allclose(with_channel[:, 0], run([{"fftwhitening": {}}], movie), atol=1e-6)
    assert abs(out.mean()) < 1e-5  # the filter removes the mean (zero frequency)
