"""Contrast curriculum: sharding, seeding, the specified distribution shift, the callback."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from tests.support.trainer_fakes import FakeCoreModel, quiet_trainer
from trainer.callbacks.curriculum import CurriculumCallback
from trainer.data.curriculum import (
    ContrastWeightedSampler,
    expected_sampled_contrast,
    frame_contrast,
    normalize_scores,
    sample_contrast,
)

SCORES = normalize_scores(torch.linspace(0.3, 1.0, 400) ** 2)


def draw(sampler: ContrastWeightedSampler) -> list[int]:
    return list(iter(sampler))


def test_mean_sampled_contrast_follows_the_schedule():
    sampler = ContrastWeightedSampler(SCORES, seed=1, warmup_steps=100, num_samples=20000)
    uniform = float(SCORES.mean())
    for step in (0, 50, 100, 500):
        sampler.set_step(step)
        mean = float(SCORES[draw(sampler)].mean())
        assert mean == pytest.approx(expected_sampled_contrast(SCORES, step, 100), abs=0.01)
    sampler.set_step(0)
    early = float(SCORES[draw(sampler)].mean())
    assert early > uniform + 0.1  # a real shift, not noise
    assert expected_sampled_contrast(SCORES, 100, 100) == pytest.approx(uniform)


def test_after_warmup_an_epoch_is_a_permutation_across_ranks():
    shards = []
    for rank in range(2):
        s = ContrastWeightedSampler(SCORES, num_replicas=2, rank=rank, seed=3, warmup_steps=10)
        s.set_step(10)
        shards.append(draw(s))
    assert len(shards[0]) == len(shards[1]) == 200
    assert sorted(shards[0] + shards[1]) == list(range(400))


def test_ranks_draw_disjoint_slices_of_one_seeded_global_draw_and_epochs_differ():
    def shard(rank: int, epoch: int) -> list[int]:
        s = ContrastWeightedSampler(SCORES, num_replicas=2, rank=rank, seed=7, warmup_steps=50)
        s.set_epoch(epoch)
        return draw(s)

    assert shard(0, 0) == shard(0, 0)  # deterministic
    assert shard(0, 0) != shard(1, 0)
    assert shard(0, 0) != shard(0, 1)
    assert len(shard(0, 0)) == len(shard(1, 0))


def test_step_changes_take_effect_within_an_epoch():
    sampler = ContrastWeightedSampler(
        SCORES, seed=0, warmup_steps=10, num_samples=1000, chunk_size=500
    )
    it = iter(sampler)
    first = [next(it) for _ in range(500)]
    sampler.set_step(10)  # curriculum over: the next chunk is uniform
    second = list(it)
    assert float(SCORES[first].mean()) > float(SCORES[second].mean()) + 0.1


def test_contrast_scores_align_with_samples_for_every_storage_dtype():
    rng = np.random.default_rng(0)
    levels = rng.uniform(0.1, 1.0, size=300)
    movie = levels[:, None, None] * rng.standard_normal((300, 8, 8))
    sample_frames = np.arange(5, 300, 3)  # valid samples: not every frame
    per_dtype = []
    for dtype in (torch.uint8, torch.bfloat16, torch.float32):
        if dtype == torch.uint8:
            stored = torch.from_numpy(np.clip(movie * 40 + 128, 0, 255).astype(np.uint8))
        else:
            stored = torch.from_numpy(movie).to(dtype)
        scores = sample_contrast(frame_contrast(stored), sample_frames)
        assert scores.dtype == torch.float32 and len(scores) == len(sample_frames)
        per_dtype.append(normalize_scores(scores))
    truth = normalize_scores(torch.from_numpy(levels[sample_frames]).float())
    for scores in per_dtype:
        assert np.corrcoef(scores, truth)[0, 1] > 0.95
    assert torch.allclose(per_dtype[0], per_dtype[2], atol=0.05)


def test_callback_pushes_increasing_steps_into_the_loader_sampler(tmp_path):
    data = TensorDataset(torch.randn(64, 1, 6, 6), torch.poisson(torch.ones(64, 3)))
    sampler = ContrastWeightedSampler(torch.rand(64), seed=0, warmup_steps=6)
    loader = DataLoader(data, batch_size=8, sampler=sampler)
    seen = []
    original = sampler.set_step
    sampler.set_step = lambda step: (seen.append(step), original(step))
    trainer = quiet_trainer(
        tmp_path,
        max_epochs=2,
        callbacks=[CurriculumCallback()],
        limit_val_batches=0,
        use_distributed_sampler=False,
    )
    trainer.fit(FakeCoreModel(), train_dataloaders=loader)
    assert trainer.global_step == 16
    batch_steps = sorted(set(seen))
    assert batch_steps == list(range(16))


def test_callback_refuses_a_loader_without_the_sampler(tmp_path):
    data = TensorDataset(torch.randn(16, 1, 6, 6), torch.poisson(torch.ones(16, 3)))
    trainer = quiet_trainer(
        tmp_path, max_epochs=1, callbacks=[CurriculumCallback()], limit_val_batches=0
    )
    with pytest.raises(RuntimeError, match="ContrastWeightedSampler"):
        trainer.fit(FakeCoreModel(), train_dataloaders=DataLoader(data, batch_size=8))
