"""What the model needs to know about each recording session, produced by the data module."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SessionInfo:
    """Shape and statistics of one session; readouts are built from it."""

    name: str
    n_units: int
    n_lags: int
    image_shape: tuple[int, int]
    behavior_dim: int
    mean_rates: tuple[float, ...]  # spikes per bin per unit, on the training split
    stim_type: str
