"""Masked Poisson loss and exact cross-rank validation statistics."""

from __future__ import annotations

import math
import os
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from trainer.models.bits_per_spike import bps_sufficient_stats, mean_bps
from trainer.models.objective import ValidationStats, all_reduce_sum, masked_poisson_nll


@pytest.mark.parametrize("log_rate", [True, False])
def test_masked_entries_change_neither_loss_nor_gradient(log_rate):
    g = torch.Generator().manual_seed(0)
    raw = torch.randn(8, 5, generator=g)
    robs = torch.poisson(torch.full((8, 5), 0.7), generator=g)
    dfs = (torch.rand(8, 5, generator=g) > 0.3).float()

    def loss_and_grad(robs_values, raw_values):
        x = raw_values.clone().requires_grad_(True)
        output = x if log_rate else torch.nn.functional.softplus(x)
        total, weight = masked_poisson_nll(output, robs_values, dfs, log_rate)
        (total / weight).backward()
        return total.detach(), weight, x.grad

    base = loss_and_grad(robs, raw)
    # Scramble everything where dfs == 0: observed counts and the model's outputs.
    hidden = dfs == 0
    robs2 = torch.where(hidden, torch.full_like(robs, 1e6), robs)
    raw2 = torch.where(hidden, torch.full_like(raw, 30.0), raw)
    other = loss_and_grad(robs2, raw2)
    assert torch.equal(base[0], other[0]) and torch.equal(base[1], other[1])
    assert torch.equal(base[2], other[2])
    assert (base[2][hidden] == 0).all() and (base[2][~hidden] != 0).any()


def test_masked_nll_matches_poisson_reference():
    rate = torch.tensor([[0.5, 2.0]])
    robs = torch.tensor([[1.0, 3.0]])
    dfs = torch.tensor([[1.0, 0.5]])
    total, weight = masked_poisson_nll(rate.log(), robs, dfs, log_rate=True)
    expected = (0.5 - math.log(0.5)) + 0.5 * (2.0 - 3.0 * math.log(2.0))
    assert total.item() == pytest.approx(expected, rel=1e-6)
    assert weight.item() == 1.5


def _data(seed: int, n_units: tuple[int, ...] = (4, 2), batches: int = 6):
    """Batches of (session, rate, robs, dfs) with unequal spike counts per batch."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(batches):
        idx = i % len(n_units)
        n = n_units[idx]
        rate = torch.rand(5 + i, n, generator=g) + 0.05
        robs = torch.poisson(rate * (1 + i), generator=g)
        dfs = (torch.rand(5 + i, n, generator=g) > 0.2).float()
        out.append((idx, rate, robs, dfs))
    return out


def _accumulate(stats: ValidationStats, batches, null_rates):
    for idx, rate, robs, dfs in batches:
        nll = masked_poisson_nll(rate, robs, dfs, log_rate=False)
        stats.add(idx, rate, robs, dfs, null_rates[idx], nll)


NULL = [torch.full((4,), 0.6), torch.full((2,), 0.4)]


def _shard(batches, rank: int, world: int = 2):
    """Contiguous shards: each rank sees both sessions, with different spike counts."""
    size = math.ceil(len(batches) / world)
    return batches[rank * size : (rank + 1) * size]


def test_two_ranks_summed_equal_one_pass_exactly():
    batches = _data(0)
    single = ValidationStats([4, 2])
    _accumulate(single, batches, NULL)
    single.reduce(lambda t: t)
    ranks = [ValidationStats([4, 2]) for _ in range(2)]
    for r, stats in enumerate(ranks):
        _accumulate(stats, _shard(batches, r), NULL)
    other = ranks[1]
    ranks[0].reduce(lambda t: t + torch.cat([s.flatten() for s in other.bps] + [other.loss]))
    assert ranks[0].summary(["a", "b"]) == pytest.approx(single.summary(["a", "b"]), rel=1e-12)
    # ... while averaging per-rank estimates (the seed's way) is biased here.
    per_rank = []
    for r in range(2):
        s = ValidationStats([4, 2])
        _accumulate(s, _shard(batches, r), NULL)
        per_rank.append(s.summary(["a", "b"])["val_bps_overall"])
    assert sum(per_rank) / 2 != pytest.approx(single.summary(["a", "b"])["val_bps_overall"])


def test_summary_matches_metrics_reference_and_skips_empty_sessions():
    batches = [b for b in _data(1) if b[0] == 0]
    stats = ValidationStats([4, 2])
    _accumulate(stats, batches, NULL)
    summary = stats.summary(["a", "b"])
    reference = sum(bps_sufficient_stats(r, k, d, NULL[0]) for _, r, k, d in batches)
    assert summary["val_bps/a"] == pytest.approx(mean_bps(reference))
    assert "val_bps/b" not in summary  # no validation data for b: not a fake zero
    assert summary["val_bps_overall"] == summary["val_bps/a"]


def _rank_main(rank: int, world: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        stats = ValidationStats([4, 2])
        _accumulate(stats, _shard(_data(0), rank, world), NULL)
        stats.reduce(all_reduce_sum)
        torch.save(stats.summary(["a", "b"]), os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_real_gloo_all_reduce_gives_every_rank_the_single_pass_numbers():
    single = ValidationStats([4, 2])
    _accumulate(single, _data(0), NULL)
    expected = single.summary(["a", "b"])
    with tempfile.TemporaryDirectory() as tmp:
        # fork: the children need no re-import of torch and the tests (seconds each).
        args = (2, os.path.join(tmp, "init"), tmp)
        mp.start_processes(_rank_main, args=args, nprocs=2, join=True, start_method="fork")
        results = [torch.load(os.path.join(tmp, f"rank{r}.pt")) for r in range(2)]
    assert results[0] == results[1]  # identical on all ranks, bit for bit
    assert results[0] == pytest.approx(expected, rel=1e-12)
