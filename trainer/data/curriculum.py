"""Contrast curriculum: high-contrast samples early, uniform sampling after ``warmup_steps``.

Why it is built this way (VisionCore's silently did nothing under DDP):

- Lightning replaces any sampler that is not a ``DistributedSampler`` when
  ``use_distributed_sampler`` is on, so the callback's ``set_step`` reached a sampler the
  data loader no longer used. This sampler shards itself by rank; the runtime turns
  Lightning's replacement off, and ``trainer.callbacks.curriculum.CurriculumCallback``
  refuses to run if it cannot find the sampler the loader really iterates.
- The step can change *within* an epoch, so indices are drawn lazily in small chunks and
  each chunk re-reads the current step. Every rank draws the same global chunk from a
  generator seeded by (seed, epoch, chunk) and keeps its own slice: ranks never overlap
  within a chunk and agree without communication.
- Scores must line up with the dataset's *valid samples* (VisionCore indexed raw frames), so
  the data module passes one score per sample, built with ``sample_contrast``.

Weights at step ``s`` with ``a = max(0, 1 - s / warmup_steps)``:
``w_i = (1 - a) + a * c_i / mean(c)``; expected sampled contrast is therefore
``(1 - a) * mean(c) + a * mean(c^2) / mean(c)``, falling to ``mean(c)`` at warmup's end.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler

_CHUNK_SEED_STRIDE = 1_000_003


def frame_contrast(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Per-frame RMS contrast of ``(T, ...)`` frames of any storage dtype, in float32.

    The storage dtype must not change the curriculum: uint8 frames and bfloat16/float32
    frames of the same movie differ only by an affine map, and RMS contrast rescaled to
    [0, 1] by ``normalize_scores`` is invariant to it.
    """
    x = torch.as_tensor(np.asarray(frames)) if isinstance(frames, np.ndarray) else frames
    x = x.reshape(x.shape[0], -1).to(torch.float32)
    return x.std(dim=1, unbiased=False)


def normalize_scores(scores: torch.Tensor) -> torch.Tensor:
    """Rescale to [0, 1]; a constant score vector becomes all ones (uniform sampling)."""
    scores = scores.to(torch.float32)
    lo, hi = scores.min(), scores.max()
    if float(hi - lo) <= 1e-12:
        return torch.ones_like(scores)
    return (scores - lo) / (hi - lo)


def sample_contrast(
    per_frame: torch.Tensor, sample_frames: torch.Tensor | np.ndarray, n_lags: int = 1
) -> torch.Tensor:
    """One score per valid sample: mean frame contrast over the sample's lag window.

    ``sample_frames[i]`` is the frame index of valid sample ``i`` (the newest frame of its
    stimulus window, i.e. the bin whose response it predicts).
    """
    idx = torch.as_tensor(np.asarray(sample_frames), dtype=torch.long)
    window = idx.view(-1, 1) - torch.arange(n_lags).view(1, -1)
    window = window.clamp(min=0, max=per_frame.shape[0] - 1)
    return per_frame[window].mean(dim=1)


def curriculum_strength(step: int, warmup_steps: int) -> float:
    """``a`` in the module docstring: 1 at step 0, 0 from ``warmup_steps`` on."""
    if warmup_steps <= 0:
        return 0.0
    return max(0.0, 1.0 - step / warmup_steps)


def curriculum_weights(scores: torch.Tensor, step: int, warmup_steps: int) -> torch.Tensor:
    a = curriculum_strength(step, warmup_steps)
    mean = scores.mean().clamp_min(1e-12)
    return (1.0 - a) + a * scores / mean


def expected_sampled_contrast(scores: torch.Tensor, step: int, warmup_steps: int) -> float:
    """What the mean contrast of sampled items should be at ``step`` (used by tests/logs)."""
    w = curriculum_weights(scores, step, warmup_steps)
    return float((w * scores).sum() / w.sum())


class ContrastWeightedSampler(Sampler[int]):
    """Rank-sharded, epoch-seeded sampler with a contrast curriculum (see module doc).

    ``scores``: one contrast score per sample of the (concatenated) training dataset.
    ``num_samples``: samples per rank per epoch (default: ``len(scores) // num_replicas``),
    identical on every rank so all ranks run the same number of batches.
    """

    def __init__(
        self,
        scores: torch.Tensor,
        num_replicas: int = 1,
        rank: int = 0,
        seed: int = 0,
        warmup_steps: int = 1000,
        num_samples: int | None = None,
        chunk_size: int = 64,
    ):
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} outside world of size {num_replicas}")
        self.scores = torch.as_tensor(scores, dtype=torch.float32).flatten()
        if self.scores.numel() == 0 or bool((self.scores < 0).any()):
            raise ValueError("contrast scores must be non-empty and non-negative")
        self.num_replicas, self.rank, self.seed = num_replicas, rank, seed
        self.warmup_steps = warmup_steps
        self.num_samples = num_samples or max(1, len(self.scores) // num_replicas)
        self.chunk_size = chunk_size
        self.epoch = 0
        self.step = 0
        self.steps_seen: list[int] = []  # distinct steps pushed in this epoch (logs, tests)
        self._drawn = [0.0, 0]  # sum of drawn scores, number drawn (this epoch, this rank)
        self._expected = [0.0, 0]  # the same for the specified distribution
        self._resume: tuple[int, int] | None = None  # (epoch, samples already trained on)

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def resume_from(self, epoch: int, samples_done: int) -> None:
        """The next pass over ``epoch`` continues after its first ``samples_done`` draws.

        Draws are seeded by (seed, epoch, chunk), so the continuation is exactly what the
        interrupted run would have drawn next at the same step.
        """
        self._resume = (epoch, samples_done)

    def set_step(self, step: int) -> None:
        self.step = int(step)
        if not self.steps_seen or self.steps_seen[-1] != self.step:
            self.steps_seen.append(self.step)

    def epoch_summary(self) -> dict[str, float]:
        """Mean score of the samples drawn this epoch vs what the schedule specifies."""
        return {
            "mean_sampled": self._drawn[0] / max(1, self._drawn[1]),
            "mean_expected": self._expected[0] / max(1, self._expected[1]),
            "mean_uniform": float(self.scores.mean()),
        }

    def _record(self, indices: list[int], expected: float) -> list[int]:
        self._drawn[0] += float(self.scores[indices].sum())
        self._drawn[1] += len(indices)
        self._expected[0] += expected * len(indices)
        self._expected[1] += len(indices)
        return indices

    def __iter__(self) -> Iterator[int]:
        self._drawn, self._expected, self.steps_seen = [0.0, 0], [0.0, 0], []
        resume, self._resume = self._resume, None
        skip = resume[1] if resume is not None and resume[0] == self.epoch else 0
        if curriculum_strength(self.step, self.warmup_steps) == 0.0:
            yield from self._record(self._uniform_epoch()[skip:], float(self.scores.mean()))
            return
        produced, chunk = skip - skip % self.chunk_size, skip // self.chunk_size
        while produced < self.num_samples:
            take = min(self.chunk_size, self.num_samples - produced)
            drawn = self._weighted_chunk(chunk, take)
            yield from drawn[max(0, skip - produced) :]
            produced += take
            chunk += 1

    def _generator(self, chunk: int) -> torch.Generator:
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch * _CHUNK_SEED_STRIDE + chunk)
        return g

    def _weighted_chunk(self, chunk: int, take: int) -> list[int]:
        weights = curriculum_weights(self.scores, self.step, self.warmup_steps)
        drawn = torch.multinomial(
            weights, take * self.num_replicas, replacement=True, generator=self._generator(chunk)
        )
        expected = float((weights * self.scores).sum() / weights.sum())
        return self._record(drawn[self.rank :: self.num_replicas].tolist(), expected)

    def _uniform_epoch(self) -> list[int]:
        """A plain epoch-seeded permutation, sharded; wraps around when short."""
        total = self.num_samples * self.num_replicas
        perm = torch.randperm(len(self.scores), generator=self._generator(-1))
        if total > len(perm):
            perm = perm.repeat(total // len(perm) + 1)
        return perm[:total][self.rank :: self.num_replicas].tolist()


def contrast_sampler_like(
    base: Sampler[int], scores: np.ndarray | torch.Tensor, warmup_steps: int
) -> ContrastWeightedSampler:
    """A curriculum sampler with ``base``'s rank, world size, seed and per-rank length.

    ``base`` is the data module's plain ``ShardedTrainSampler``; copying its length keeps
    the number of batches per epoch (and so the LR schedule) unchanged by the curriculum.
    """
    return ContrastWeightedSampler(
        normalize_scores(torch.as_tensor(np.asarray(scores), dtype=torch.float32)),
        num_replicas=base.world_size,
        rank=base.rank,
        seed=base.seed,
        warmup_steps=warmup_steps,
        num_samples=len(base),
    )
