"""The training objective and the validation statistics, as plain tensor functions.

Kept apart from the LightningModule so that masking and exact cross-rank aggregation are
tested directly: a rank sums, the sums are all-reduced, only then are ratios taken.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from trainer.models.bits_per_spike import bps_sufficient_stats, mean_bps


def masked_poisson_nll(
    output: torch.Tensor, robs: torch.Tensor, dfs: torch.Tensor, log_rate: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sum of dfs-weighted Poisson NLL, sum of dfs)``; ``log(k!)`` omitted (constant).

    ``output`` is a log-rate when ``log_rate`` (the NLL is then ``exp(o) - k*o``, stable
    for very negative ``o``), otherwise a rate. Entries with ``dfs == 0`` contribute
    neither loss nor gradient, even when their output is non-finite.
    """
    if log_rate:
        nll = output.exp() - robs * output
    else:
        nll = output - robs * torch.log(output.clamp_min(1e-8))
    weighted = torch.where(dfs > 0, nll * dfs, torch.zeros_like(nll))
    return weighted.sum(), dfs.sum()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all ranks in place when a process group is running."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


class ValidationStats:
    """Per-session bits/spike sufficient statistics plus the validation NLL sums."""

    def __init__(self, n_units: Sequence[int], device: torch.device | str = "cpu") -> None:
        self.n_units = list(n_units)
        self.bps = [torch.zeros(2, n, dtype=torch.float64, device=device) for n in self.n_units]
        self.loss = torch.zeros(2, dtype=torch.float64, device=device)  # (nll sum, dfs sum)

    def add(
        self,
        idx: int,
        rate: torch.Tensor,
        robs: torch.Tensor,
        dfs: torch.Tensor,
        null_rate: torch.Tensor,
        nll: tuple[torch.Tensor, torch.Tensor],
    ) -> None:
        """Accumulate one batch of session ``idx``."""
        self.bps[idx] += bps_sufficient_stats(rate.float(), robs.float(), dfs.float(), null_rate)
        self.loss += torch.stack([nll[0].detach(), nll[1].detach()]).to(torch.float64)

    def reduce(self, reducer: Callable[[torch.Tensor], torch.Tensor] = all_reduce_sum) -> None:
        """Sum every statistic across ranks in one collective (one flat float64 buffer)."""
        flat = reducer(torch.cat([s.flatten() for s in self.bps] + [self.loss]))
        offset = 0
        for i, n in enumerate(self.n_units):
            self.bps[i] = flat[offset : offset + 2 * n].view(2, n)
            offset += 2 * n
        self.loss = flat[offset:]

    def summary(self, names: Sequence[str]) -> dict[str, float]:
        """``val_loss``, ``val_bps/<name>`` for sessions with spikes, ``val_bps_overall``."""
        out: dict[str, float] = {}
        if self.loss[1] > 0:
            out["val_loss"] = float(self.loss[0] / self.loss[1])
        per_session = []
        for name, stats in zip(names, self.bps, strict=True):
            if stats[1].sum() <= 0:
                continue  # no validation spikes seen for this session (e.g. limited batches)
            value = mean_bps(stats)
            if math.isfinite(value):
                out[f"val_bps/{name}"] = value
                per_session.append(value)
        if per_session:
            out["val_bps_overall"] = sum(per_session) / len(per_session)
        return out
