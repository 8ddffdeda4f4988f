"""``split_by_trials``: whole trials on each side, reproducible by seed, VisionCore's draw."""

from __future__ import annotations

import numpy as np
import torch

from trainer.data.transforms import split_by_trials

TRIALS = np.repeat(np.arange(3, 23), 7)  # 20 trials of 7 frames
FRAMES = np.flatnonzero(np.arange(TRIALS.size) % 7 != 0)  # every trial's first frame invalid


def test_each_trial_lands_on_one_side_and_every_frame_somewhere():
    train, val = split_by_trials(TRIALS, FRAMES, 0.8, seed=1002)
    assert not set(TRIALS[train]) & set(TRIALS[val])
    assert sorted(np.concatenate([train, val])) == sorted(FRAMES)
    assert len(set(TRIALS[train])) == 16 and len(set(TRIALS[val])) == 4


def test_the_same_seed_gives_the_same_split_and_another_seed_another():
    first = split_by_trials(TRIALS, FRAMES, 0.8, seed=7)
    again = split_by_trials(TRIALS, FRAMES, 0.8, seed=7)
    other = split_by_trials(TRIALS, FRAMES, 0.8, seed=8)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[1], other[1])


def test_the_trials_are_the_ones_visioncore_draws_and_the_global_rng_is_untouched():
    state = torch.random.get_rng_state()
    train, _ = split_by_trials(TRIALS, FRAMES, 0.8, seed=1002)
    assert torch.equal(torch.random.get_rng_state(), state)
    torch.manual_seed(1002)  # VisionCore: set_seeds(seed); randperm over the unique trials
    order = torch.randperm(20).numpy()
    assert set(TRIALS[train]) == set(np.unique(TRIALS)[order[:16]])
    torch.random.set_rng_state(state)
