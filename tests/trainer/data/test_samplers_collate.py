"""Sharded samplers and group_collate: exact coverage, equal work per rank, grouping."""

from __future__ import annotations

import pytest
import torch

from trainer.data import ShardedEvalSampler, ShardedTrainSampler, group_collate


def test_train_shards_are_disjoint_equal_and_reshuffled_per_epoch():
    shards = [ShardedTrainSampler(1000, 32, rank=r, world_size=2, seed=5) for r in (0, 1)]
    first = [list(s) for s in shards]
    assert len(first[0]) == len(first[1]) == 15 * 32  # 1000 // 64 full batches each
    assert not set(first[0]) & set(first[1])
    assert len(set(first[0])) == len(first[0])
    for s in shards:
        s.set_epoch(1)
    second = [list(s) for s in shards]
    assert second[0] != first[0] and not set(second[0]) & set(second[1])
    again = ShardedTrainSampler(1000, 32, rank=0, world_size=2, seed=5)
    assert list(again) == first[0]  # epoch-seeded: reproducible across restarts


def test_steps_per_epoch_caps_and_tiny_datasets_still_give_a_batch():
    capped = ShardedTrainSampler(1000, 32, world_size=2, seed=0, steps_per_epoch=3)
    assert capped.num_batches == 3 and len(list(capped)) == 96
    tiny = [ShardedTrainSampler(10, 8, rank=r, world_size=2) for r in (0, 1)]
    assert [len(list(s)) for s in tiny] == [8, 8]
    with pytest.raises(ValueError):
        ShardedTrainSampler(10, 8, rank=2, world_size=2)


@pytest.mark.parametrize(("n", "world"), [(10, 1), (10, 3), (7, 4), (3, 4), (1001, 2)])
def test_validation_covers_every_sample_exactly_once(n, world):
    seen = [i for r in range(world) for i in ShardedEvalSampler(n, r, world)]
    assert sorted(seen) == list(range(n))
    sizes = [len(ShardedEvalSampler(n, r, world)) for r in range(world)]
    assert max(sizes) - min(sizes) <= 1


def sample(idx, n_units, value):
    return {
        "stim": torch.full((1, 3, 4, 4), float(value)),
        "robs": torch.full((n_units,), float(value)),
        "dfs": torch.ones(n_units),
        "behavior": torch.zeros(2),
        "dataset_idx": idx,
    }


def test_group_collate_groups_by_dataset_in_index_order():
    batch = group_collate([sample(2, 5, 0), sample(0, 3, 1), sample(2, 5, 2), sample(0, 3, 3)])
    assert [g["dataset_idx"] for g in batch] == [0, 2]
    first, second = batch
    assert first["stim"].shape == (2, 1, 3, 4, 4) and first["robs"].shape == (2, 3)
    assert second["robs"].shape == (2, 5) and second["behavior"].shape == (2, 2)
    assert first["robs"][:, 0].tolist() == [1.0, 3.0]  # order within a group is kept
    assert second["stim"][:, 0, 0, 0, 0].tolist() == [0.0, 2.0]
    assert all(g["stim"].dtype == torch.float32 for g in batch)
