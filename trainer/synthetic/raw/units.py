"""What spike sorting says about a session's units, and their rates across stimulus types.

Real sorting output has non-contiguous cluster ids, units whose spikes partly fall below
the detection threshold (a missing-spike percentage that changes as the probe drifts)
and a few multi-units (high median missing percentage throughout: VisionCore's
``missing_pct`` datafilter keeps those, but drops single units while they are lost). The
generator thins each unit's spikes by its missing percentage, so ``rates`` stays the exact
expected count of the recorded ``robs``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trainer.synthetic import neurons
from trainer.synthetic.session import dequantize

GOOD_UNIT_PCT = (0.0, 6.0)  # baseline missing percentage of a well isolated unit
LOST_PCT = (85.0, 100.0)  # while a unit has drifted off the probe
MULTI_UNIT_PCT = (55.0, 75.0)  # median of a multi-unit (above VisionCore's 45 threshold)
MULTI_UNIT_RATE_GAIN = 2.5  # a multi-unit sums a few neurons before it loses spikes
_PROJECTION_BLOCK = 4096  # frames per matrix product: bounded float temporaries
_FILTER_COLUMNS = 32  # columns per FFT convolution: spectra of a few tens of MB


@dataclass(frozen=True)
class SortingQuality:
    """Missing-spike percentage per unit over the session clock, and which are multi-units."""

    times: np.ndarray  # (K,) seconds
    pct: np.ndarray  # (K, N) float32 percent
    multi_unit: np.ndarray  # (N,) bool
    lost_epoch_s: list[tuple[int, float, float]]  # (unit, start s, end s) of drift-outs


def cluster_ids(n_units: int, rng) -> np.ndarray:
    """Increasing, non-contiguous ids (what remains of a sorter's clusters after curation)."""
    gaps = rng.integers(1, 5, size=n_units)
    return (np.cumsum(gaps) + int(rng.integers(0, 8))).astype(np.int64)


def sorting_quality(n_units: int, duration_s: float, params: dict, rng) -> SortingQuality:
    """Missing-percentage curves sampled every ``missing_pct_step_s`` over the session.

    Good units stay low with a slow wobble; ``missing_unit_frac`` of them drift off the
    probe for an epoch of ``missing_epoch_frac`` of the session (ramping up and back);
    ``n_multi_units`` units are multi-units with a high median throughout.
    """
    step = float(params["missing_pct_step_s"])
    times = np.arange(int(np.ceil(duration_s / step)) + 1, dtype=np.float64) * step
    base = rng.uniform(*GOOD_UNIT_PCT, size=n_units)
    phase = rng.uniform(0.0, 2 * np.pi, size=n_units)
    wobble = 1.5 * np.sin(2 * np.pi * times[:, None] / max(duration_s, step) + phase)
    pct = np.clip(base + wobble, 0.0, 100.0)
    multi = np.zeros(n_units, dtype=bool)
    multi[rng.permutation(n_units)[: min(int(params["n_multi_units"]), n_units)]] = True
    pct[:, multi] = rng.uniform(*MULTI_UNIT_PCT, size=int(multi.sum())) + rng.normal(
        0.0, 3.0, size=(times.size, int(multi.sum()))
    )
    lost = []
    for unit in np.flatnonzero(~multi & (rng.random(n_units) < params["missing_unit_frac"])):
        length = rng.uniform(*params["missing_epoch_frac"]) * duration_s
        start = rng.uniform(0.0, max(duration_s - length, 0.0))
        ramp = max(0.1 * length, step)
        level = rng.uniform(*LOST_PCT)
        up = np.clip((times - start) / ramp, 0.0, 1.0)
        rise = up * np.clip((start + length - times) / ramp, 0.0, 1.0)
        pct[:, unit] = np.maximum(pct[:, unit], level * rise)
        lost.append((int(unit), float(start), float(start + length)))
    return SortingQuality(times, np.clip(pct, 0.0, 100.0).astype(np.float32), multi, lost)


def frame_projection(stim_u8: np.ndarray, units: neurons.UnitPopulation) -> np.ndarray:
    """(F, 2N): every frame projected on each unit's even and odd Gabor, block by block."""
    weights = np.concatenate([units.spatial, units.spatial_quad]).T.astype(np.float32)
    out = np.empty((stim_u8.shape[0], weights.shape[1]), dtype=np.float64)
    for start in range(0, stim_u8.shape[0], _PROJECTION_BLOCK):
        block = dequantize(stim_u8[start : start + _PROJECTION_BLOCK])
        out[start : start + block.shape[0]] = block.reshape(block.shape[0], -1) @ weights
    return out


def causal_filter(signal: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    """``out[t, c] = sum_k kernels[c, k] * signal[t - k, c]`` (zeros before t = 0), by FFT.

    :func:`neurons.causal_filter` adds one shifted copy per kernel tap: 66 passes over a
    full session's (B, 2N) array at 240 Hz. An FFT convolution costs a few passes instead,
    done a block of columns at a time so that the spectra stay small.
    """
    n_bins, n_taps = signal.shape[0], kernels.shape[1]
    size = 1 << int(np.ceil(np.log2(n_bins + n_taps - 1)))
    out = np.empty(signal.shape, dtype=np.float64)
    for start in range(0, signal.shape[1], _FILTER_COLUMNS):
        stop = start + _FILTER_COLUMNS
        spectrum = np.fft.rfft(signal[:, start:stop], size, axis=0)
        spectrum *= np.fft.rfft(kernels[start:stop].T, size, axis=0)
        out[:, start:stop] = np.fft.irfft(spectrum, size, axis=0)[:n_bins]
    return out


def drive(projection: np.ndarray, units: neurons.UnitPopulation, bins_per_frame: int):
    """Nonnegative LN drive (B, N) at the recording rate from per-frame projections.

    A frame stays on the screen for ``bins_per_frame`` bins; the temporal kernels are in
    bins, so the drive has the recording's time resolution.
    """
    per_bin = np.repeat(projection, bins_per_frame, axis=0)
    filtered = causal_filter(per_bin, np.concatenate([units.temporal, units.temporal]))
    n = units.temporal.shape[0]
    even, odd = filtered[:, :n], filtered[:, n:]
    return np.where(units.is_complex, np.sqrt(even**2 + odd**2), np.maximum(even, 0.0))


def pooled_rates(
    drives: list[np.ndarray],
    gains: list[np.ndarray],
    units: neurons.UnitPopulation,
    bins_per_frame: int,
) -> list[np.ndarray]:
    """Expected spikes per bin for each stimulus type, one neuron model for all types.

    Like :func:`neurons.firing_rates`, but the drive is standardised over all types
    together: the same neuron is more driven by one stimulus than by another, as in a
    real session (a per-type normalisation would give each type a gain a model with one
    readout could not know). Target rates are per display frame, so per bin they are
    divided by ``bins_per_frame``: summed back to display frames, the rates are the 120 Hz
    rates the presets were tuned for.
    """
    stacked = np.concatenate(drives)
    mean, std = stacked.mean(0), np.maximum(stacked.std(0), 1e-9)
    nonlin = [np.logaddexp(0.0, units.slope * (d - mean) / std - 1.0) for d in drives]
    scale = units.target_rate / np.maximum(np.concatenate(nonlin).mean(0), 1e-9)
    ceiling = np.maximum(neurons.MAX_RATE, 6.0 * units.target_rate)
    rates = []
    for n, gain in zip(nonlin, gains, strict=True):
        rate = ceiling * np.tanh(n * scale / ceiling)
        rates.append((rate * gain / bins_per_frame).astype(np.float32))
    return rates
