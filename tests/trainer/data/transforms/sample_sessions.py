"""Small in-memory sessions and op contexts for the transform tests."""

from __future__ import annotations

import numpy as np

from trainer.data.transforms import OpContext
from trainer.recordings.session import MissingPct, RawRecording, RawSession


def make_context(
    trial_inds: np.ndarray,
    dpi_valid: np.ndarray | None = None,
    session_cids: np.ndarray | None = None,
    kept_cids: np.ndarray | None = None,
    missing: MissingPct | None = None,
    rate_hz: float = 120.0,
    t_bins: np.ndarray | None = None,
) -> OpContext:
    """An ``OpContext`` over ``len(trial_inds)`` bins of a session with those units."""
    trial_inds = np.asarray(trial_inds, dtype=np.int64)
    steps = trial_inds.shape[0]
    session_cids = np.arange(4) if session_cids is None else np.asarray(session_cids)
    session = RawSession("Test_2024-01-01", session_cids, {}, missing_pct=missing)
    return OpContext(
        session=session,
        cids=session_cids if kept_cids is None else np.asarray(kept_cids),
        rate_hz=rate_hz,
        t_bins=np.arange(steps) / rate_hz if t_bins is None else np.asarray(t_bins),
        trial_inds=trial_inds,
        dpi_valid=np.ones(steps, dtype=bool) if dpi_valid is None else np.asarray(dpi_valid),
    )


def make_recording(trial_lengths: list[int], n_units: int = 3, seed: int = 0) -> RawRecording:
    """A 240 Hz recording of consecutive trials with random spikes, eye trace and stim."""
    rng = np.random.default_rng(seed)
    trial_inds = np.repeat(np.arange(len(trial_lengths)) + 10, trial_lengths).astype(np.int64)
    steps = trial_inds.shape[0]
    robs = rng.poisson(0.7, (steps, n_units)).astype(np.float32)
    covariates = {
        "stim": rng.integers(0, 256, (steps, 5, 6), dtype=np.uint8),
        "robs": robs,
        "rates": rng.random((steps, n_units)).astype(np.float32),
        "eyepos": rng.normal(0, 2, (steps, 2)).astype(np.float32),
        "dpi_valid": rng.random(steps) > 0.1,
        "trial_inds": trial_inds,
        "t_bins": 100.0 + (np.arange(steps) + 0.5) / 240.0,
    }
    return RawRecording("backimage", 240.0, covariates, {"source_rate": 240.0})
