"""``train_val_split`` and ``seed``: training and validation frames from disjoint trials.

VisionCore (``split_inds_by_trial``) seeds torch, draws ``torch.randperm`` over the sorted
unique trial ids of the whole recording and gives the first ``int(n_trials * fraction)``
of that order to training. We draw the same permutation from a private generator seeded
the same way (so the global RNG is untouched), hence the same trials as VisionCore for the
same trial ids and seed.
"""

from __future__ import annotations

import numpy as np
import torch


def split_by_trials(
    trial_inds: np.ndarray, frames: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(train frames, validation frames): ``frames`` (indices into ``trial_inds``) split so
    that every trial's frames all land on one side; ``fraction`` of the trials train."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"train_val_split: {fraction} is not a fraction in [0, 1]")
    trial_inds = np.asarray(trial_inds)
    frames = np.asarray(frames, dtype=np.int64)
    trials = np.unique(trial_inds)
    generator = torch.Generator().manual_seed(int(seed))
    order = torch.randperm(len(trials), generator=generator).numpy()
    train_trials = trials[order[: int(len(trials) * fraction)]]
    in_train = np.isin(trial_inds[frames], train_trials)
    return frames[in_train], frames[~in_train]
