"""Bits per spike from sufficient statistics, so that ranks aggregate exactly.

A per-rank bits/spike averaged across ranks is biased (ranks see different spike counts).
Instead each rank sums, per unit, the masked Poisson log-likelihood gain over the null
model and the masked spike count; these sums are all-reduced and only then divided.
The ``log(k!)`` term cancels between model and null, so it is never computed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

_EPS = 1e-8


def poisson_loglik(rate: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Elementwise Poisson log-likelihood without the ``log(k!)`` term."""
    return counts * torch.log(rate.clamp_min(_EPS)) - rate


def bps_sufficient_stats(
    rate: torch.Tensor, robs: torch.Tensor, dfs: torch.Tensor, null_rate: torch.Tensor
) -> torch.Tensor:
    """Per-unit sums ``[[ll_gain...], [spikes...]]`` (shape ``(2, N)``) for one batch.

    ``rate``, ``robs``, ``dfs``: ``(B, N)``; ``null_rate``: ``(N,)`` mean rate per bin on
    the training split. ``dfs`` masks (or weights) samples where a unit was not recorded.
    """
    gain = poisson_loglik(rate, robs) - poisson_loglik(null_rate.expand_as(robs), robs)
    return torch.stack([(gain * dfs).sum(0), (robs * dfs).sum(0)]).to(torch.float64)


def bits_per_spike(stats: torch.Tensor) -> torch.Tensor:
    """Per-unit bits/spike from summed stats; NaN for units without spikes."""
    gain, spikes = stats[0], stats[1]
    bps = gain / (spikes * math.log(2.0))
    return torch.where(spikes > 0, bps, torch.full_like(bps, float("nan")))


def mean_bps(stats: torch.Tensor) -> float:
    """Mean bits/spike over the units that spiked (a session's headline number)."""
    return float(torch.nanmean(bits_per_spike(stats)))


def oracle_bps(datamodule: Any) -> dict[str, float]:
    """Bits/spike of the true LN-Poisson rates on the validation samples, per session.

    Same statistic and null model (training-split mean rates) as the model's
    ``val_bps``, on exactly the validation samples, so ``val_bps / oracle`` is a
    fair fraction of the explainable information. Empty unless every session is
    synthetic (the ground truth is the derived ``rates``).
    """
    val = datamodule.val_dataset
    if val is None:
        raise RuntimeError("MultiDatasetDM.setup() must run before asking for the oracle")
    if not all("rates" in ds.arrays.keys for ds in val.datasets):
        return {}  # recorded data has no ground truth (only synthetic sessions carry rates)
    result = {}
    for ds, info in zip(val.datasets, datamodule.sessions_info, strict=True):
        t = ds.frames
        stats = bps_sufficient_stats(
            torch.from_numpy(np.asarray(ds.arrays.array("rates")[t], dtype=np.float32)),
            torch.from_numpy(np.asarray(ds.arrays.array("robs")[t], dtype=np.float32)),
            torch.from_numpy(np.asarray(ds.arrays.array("dfs")[t], dtype=np.float32)),
            torch.tensor(info.mean_rates, dtype=torch.float32),
        )
        result[info.name] = mean_bps(stats)
    return result
