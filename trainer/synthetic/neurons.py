"""Ground-truth LN-Poisson V1 units: a shared Gabor bank, biphasic kernels, rates.

Every unit is spatiotemporally separable: a Gabor from a bank shared by all sessions
(so a shared vision core can learn it once) placed at the session's RF offset plus a
per-unit jitter, times a biphasic temporal kernel from a small bank. Simple cells
rectify the linear drive; complex cells take the energy of a quadrature pair. The
drive is standardised, passed through a softplus with a per-unit slope and scaled to a
target mean rate, then multiplied by a saccade-locked gain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_RATE = 3.0  # spikes per bin at which the output nonlinearity saturates
ENVELOPE_CYCLES = 0.35  # Gabor envelope sigma in cycles: RFs stay well inside small frames


@dataclass(frozen=True)
class UnitPopulation:
    """Parameters of a session's units (all arrays have length ``n_units`` first)."""

    spatial: np.ndarray  # (N, H*W) even-phase Gabor
    spatial_quad: np.ndarray  # (N, H*W) odd-phase partner (used by complex cells)
    temporal: np.ndarray  # (N, L) kernel, index 0 = current frame
    is_complex: np.ndarray  # (N,) bool
    centers: np.ndarray  # (N, 2) RF centre (y, x) in pixels
    bank_index: np.ndarray  # (N,) index into the Gabor bank
    kernel_index: np.ndarray  # (N,) index into the temporal kernel bank
    target_rate: np.ndarray  # (N,) mean spikes per bin before gain
    slope: np.ndarray  # (N,)
    saccade_amp: np.ndarray  # (N,) gain modulation amplitude

    def describe(self) -> list[dict]:
        """JSON-able ground truth per unit (stored in meta.json)."""
        return [
            {
                "type": "complex" if c else "simple",
                "bank_index": int(b),
                "kernel_index": int(k),
                "center_yx": [round(float(v), 3) for v in ctr],
                "target_rate": round(float(r), 4),
                "slope": round(float(s), 4),
                "saccade_amp": round(float(a), 4),
            }
            for c, b, k, ctr, r, s, a in zip(
                self.is_complex,
                self.bank_index,
                self.kernel_index,
                self.centers,
                self.target_rate,
                self.slope,
                self.saccade_amp,
                strict=True,
            )
        ]


def gabor_bank(params: dict) -> list[tuple[float, float, float]]:
    """(orientation, spatial frequency, envelope sigma) per bank filter; seed-independent."""
    bank = []
    for sf in params["spatial_freqs"]:
        for k in range(params["n_orientations"]):
            theta = np.pi * k / params["n_orientations"]
            bank.append((float(theta), float(sf), float(ENVELOPE_CYCLES / sf)))
    return bank


def render_gabor(size: int, center, theta: float, sf: float, sigma: float, phase: float):
    """A unit-norm Gabor on a ``size x size`` grid, flattened."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    y, x = yy - center[0], xx - center[1]
    u = x * np.cos(theta) + y * np.sin(theta)
    g = np.exp(-(x**2 + y**2) / (2 * sigma**2)) * np.cos(2 * np.pi * sf * u + phase)
    g = g.ravel()
    return g / max(np.linalg.norm(g), 1e-12)


def temporal_kernel_bank(params: dict, n_lags: int, frame_rate_hz: float, rng) -> np.ndarray:
    """Biphasic kernels (K, n_lags): a fast positive lobe minus a slower negative one."""
    lo, hi = params["temporal_peak_ms"]
    peaks = np.linspace(lo, hi, params["n_temporal_kernels"])
    t_ms = (np.arange(n_lags) + 0.5) * 1000.0 / frame_rate_hz
    kernels = []
    for peak in peaks:
        tau = peak / 3.0
        pos = (t_ms / tau) ** 3 * np.exp(-t_ms / tau)
        neg = (t_ms / (1.8 * tau)) ** 3 * np.exp(-t_ms / (1.8 * tau))
        k = pos - rng.uniform(0.5, 0.9) * neg
        kernels.append(k / max(np.linalg.norm(k), 1e-12))
    return np.asarray(kernels)


def sample_units(
    n_units: int, params: dict, n_lags: int, frame_rate_hz: float, rng, bank_rng
) -> UnitPopulation:
    """Draw a session's units: bank filter, centre, type, kernel, rate and gain params."""
    size = params["image_size"]
    bank = gabor_bank(params)
    kernels = temporal_kernel_bank(params, n_lags, frame_rate_hz, bank_rng)
    if params["rf_offset"] is None:
        offset = rng.uniform(-params["rf_offset_max"], params["rf_offset_max"], size=2)
    else:
        offset = np.asarray(params["rf_offset"], dtype=float)
    centre = (size - 1) / 2.0 + offset
    centers = centre + rng.uniform(-params["rf_jitter"], params["rf_jitter"], size=(n_units, 2))
    bank_index = rng.integers(0, len(bank), size=n_units)
    kernel_index = rng.integers(0, len(kernels), size=n_units)
    spatial = np.empty((n_units, size * size))
    quad = np.empty_like(spatial)
    for i in range(n_units):
        theta, sf, sigma = bank[bank_index[i]]
        spatial[i] = render_gabor(size, centers[i], theta, sf, sigma, 0.0)
        quad[i] = render_gabor(size, centers[i], theta, sf, sigma, np.pi / 2)
    return UnitPopulation(
        spatial=spatial,
        spatial_quad=quad,
        temporal=kernels[kernel_index],
        is_complex=rng.random(n_units) < params["frac_complex"],
        centers=centers,
        bank_index=bank_index,
        kernel_index=kernel_index,
        target_rate=rng.uniform(*params["mean_rate"], size=n_units),
        slope=rng.uniform(*params["rate_slope"], size=n_units),
        saccade_amp=rng.uniform(0.0, params["saccade_gain"], size=n_units),
    )


def causal_filter(projection: np.ndarray, temporal: np.ndarray) -> np.ndarray:
    """``out[t, i] = sum_k temporal[i, k] * projection[t - k, i]`` (zeros before t = 0)."""
    n_frames = projection.shape[0]
    out = np.zeros_like(projection)
    for k in range(temporal.shape[1]):
        out[k:] += temporal[:, k] * projection[: n_frames - k]
    return out


def drive(stim: np.ndarray, units: UnitPopulation) -> np.ndarray:
    """Nonnegative LN drive ``(T, N)`` from float frames ``(T, H, W)``."""
    flat = stim.reshape(stim.shape[0], -1).astype(np.float64)  # converted once, not per pair
    even = causal_filter(flat @ units.spatial.T, units.temporal)
    odd = causal_filter(flat @ units.spatial_quad.T, units.temporal)
    del flat
    energy = np.sqrt(even**2 + odd**2)
    return np.where(units.is_complex, energy, np.maximum(even, 0.0))


def firing_rates(stim: np.ndarray, units: UnitPopulation, gain: np.ndarray) -> np.ndarray:
    """Spikes per bin ``(T, N)``: softplus of the standardised drive, times the gain."""
    d = drive(stim, units)
    z = (d - d.mean(0)) / np.maximum(d.std(0), 1e-9)
    nonlin = np.logaddexp(0.0, units.slope * z - 1.0)
    rate = nonlin * (units.target_rate / np.maximum(nonlin.mean(0), 1e-9))
    # Soft ceiling: heavy-tailed drives would otherwise give tens of spikes per bin.
    ceiling = np.maximum(MAX_RATE, 6.0 * units.target_rate)
    rate = ceiling * np.tanh(rate / ceiling)
    return (rate * gain).astype(np.float32)


def saccade_modulation(frames_since_saccade: np.ndarray, frame_rate_hz: float) -> np.ndarray:
    """Saccade-locked gain profile: suppression right after a saccade, then enhancement."""
    t_ms = frames_since_saccade * 1000.0 / frame_rate_hz
    suppression = np.exp(-0.5 * ((t_ms - 25.0) / 25.0) ** 2)
    enhancement = np.exp(-0.5 * ((t_ms - 130.0) / 50.0) ** 2)
    return -1.0 * suppression + 0.6 * enhancement


def saccade_gain(frames_since_saccade: np.ndarray, units: UnitPopulation, fs: float) -> np.ndarray:
    """Per-unit multiplicative gain ``(T, N)``, kept positive."""
    profile = saccade_modulation(frames_since_saccade, fs)[:, None]
    return np.clip(1.0 + units.saccade_amp[None, :] * profile, 0.05, None)
