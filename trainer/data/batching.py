"""Batches: samplers that shard themselves across ranks, and the per-session collate.

The runtime disables Lightning's own distributed sampler.

Training: every epoch one seeded permutation of all samples, cut into ``world_size``
disjoint slices of the same number of full batches, so every rank runs the same number of
optimizer steps (DDP would hang otherwise). Validation: contiguous, disjoint slices that
together cover every sample exactly once, so all-reduced sums are exact.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler


class ShardedTrainSampler(Sampler[int]):
    """Epoch-seeded permutation, sharded by rank, equal batch counts on every rank."""

    def __init__(
        self,
        n_samples: int,
        batch_size: int,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        steps_per_epoch: int | None = None,
    ) -> None:
        if n_samples < 1 or batch_size < 1:
            raise ValueError(
                f"need n_samples >= 1 and batch_size >= 1, got {n_samples}, {batch_size}"
            )
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world_size {world_size}")
        self.n_samples, self.batch_size = n_samples, batch_size
        self.rank, self.world_size, self.seed = rank, world_size, seed
        self.steps_per_epoch = steps_per_epoch
        self.epoch = 0
        self._resume: tuple[int, int] | None = None  # (epoch, samples already trained on)

    @property
    def num_batches(self) -> int:
        """Full batches per rank per epoch (at least one; capped by ``steps_per_epoch``)."""
        natural = max(self.n_samples // (self.batch_size * self.world_size), 1)
        return min(natural, self.steps_per_epoch) if self.steps_per_epoch else natural

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at each epoch start: a new permutation per epoch."""
        self.epoch = epoch

    def resume_from(self, epoch: int, samples_done: int) -> None:
        """The next pass over ``epoch`` yields only what follows its first ``samples_done``."""
        self._resume = (epoch, samples_done)

    def __len__(self) -> int:
        return self.num_batches * self.batch_size

    def __iter__(self) -> Iterator[int]:
        per_rank = len(self)
        needed = per_rank * self.world_size
        rng = np.random.default_rng([self.seed, self.epoch])
        # Tiny datasets: chain permutations so every rank still gets one full batch.
        n_perms = -(-needed // self.n_samples)
        order = np.concatenate([rng.permutation(self.n_samples) for _ in range(n_perms)])
        mine = order[self.rank * per_rank : (self.rank + 1) * per_rank]
        return iter(mine[take_resume_offset(self)].tolist())


def take_resume_offset(sampler: ShardedTrainSampler | Any) -> slice:
    """The part of this epoch's indices still to yield; a pending resume is used up once."""
    resume, sampler._resume = sampler._resume, None
    if resume is None or resume[0] != sampler.epoch:
        return slice(None)
    return slice(resume[1], None)


class ResumableLoader(DataLoader):
    """The training loader, which knows how far into its epoch training has got.

    The loader cannot count trained batches itself (Lightning fetches ahead), so the
    checkpoint callback reports the position with :meth:`record_position` after every
    training batch; the data module saves it in each checkpoint and, on resume, starts the
    sampler at the first batch not yet trained on (``MultiDatasetDM.load_state_dict``).
    ``state_dict``/``load_state_dict`` make the loader stateful for Lightning too, which
    also restores through it when it can (and so does not warn "not resumable").
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.position = (0, 0)  # (epoch, batches trained in it)

    def record_position(self, epoch: int, batches_done: int) -> None:
        self.position = (int(epoch), int(batches_done))

    def state_dict(self) -> dict[str, int]:
        epoch, batches = self.position
        return {"epoch": epoch, "batches_done": batches, "batch_size": int(self.batch_size)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        epoch, samples = int(state["epoch"]), int(state["batches_done"]) * int(state["batch_size"])
        # Lightning creates the resumed epoch's iterator before it calls set_epoch: set the
        # epoch here, or the first pass would follow epoch 0's order.
        self.sampler.set_epoch(epoch)
        self.sampler.resume_from(epoch, samples)
        self.position = (int(state["epoch"]), int(state["batches_done"]))


class ShardedEvalSampler(Sampler[int]):
    """Rank's contiguous share of ``range(n_samples)``; shares differ by at most one."""

    def __init__(self, n_samples: int, rank: int = 0, world_size: int = 1) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world_size {world_size}")
        self.start = n_samples * rank // world_size
        self.stop = n_samples * (rank + 1) // world_size

    def __len__(self) -> int:
        return self.stop - self.start

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.start, self.stop))


def group_collate(samples: list[dict]) -> list[dict]:
    """Stack samples per ``dataset_idx``; groups ordered by ``dataset_idx``.

    Sessions have different unit counts, so ``robs``/``dfs`` (and ``history``) cannot share
    one tensor; each group is a regular batch for that session's readout, holding every
    key of its samples (the dataset config's ``keys_lags``).
    """
    groups: dict[int, list[dict]] = defaultdict(list)
    for sample in samples:
        groups[int(sample["dataset_idx"])].append(sample)
    return [
        {
            **{
                key: torch.stack([s[key] for s in members])
                for key in members[0]
                if key != "dataset_idx"
            },
            "dataset_idx": idx,
        }
        for idx, members in sorted(groups.items())
    ]


def keep_groups(groups: list[dict]) -> list[dict]:
    """Collate for datasets whose ``__getitems__`` returns the batch already grouped."""
    return groups
