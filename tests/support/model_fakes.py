"""Fake sessions and batches in the data module's batch format (docs: trainer_shared)."""

from __future__ import annotations

import torch

from trainer.data.datasets import SessionInfo

N_LAGS = 8
BEHAVIOR_DIM = 4


def fake_sessions(image_shapes=((20, 20), (16, 16)), units=(5, 3)) -> list[SessionInfo]:
    """Sessions with different unit counts and image sizes, sharing lags and behaviour dims."""
    return [
        SessionInfo(
            name=f"sess{i}",
            n_units=n,
            n_lags=N_LAGS,
            image_shape=shape,
            behavior_dim=BEHAVIOR_DIM,
            mean_rates=tuple(0.1 + 0.05 * j for j in range(n)),
            stim_type="backimage",
        )
        for i, (shape, n) in enumerate(zip(image_shapes, units, strict=True))
    ]


def fake_batch(info: SessionInfo, idx: int, batch: int = 6, seed: int = 0) -> dict:
    """One session's part of a ``group_collate`` batch."""
    g = torch.Generator().manual_seed(seed * 100 + idx)
    return {
        "stim": torch.randn(batch, 1, info.n_lags, *info.image_shape, generator=g),
        "robs": torch.poisson(torch.full((batch, info.n_units), 0.5), generator=g),
        "dfs": torch.ones(batch, info.n_units),
        "behavior": torch.randn(batch, info.behavior_dim, generator=g),
        "dataset_idx": idx,
    }


def fake_batches(sessions: list[SessionInfo], batch: int = 6, seed: int = 0) -> list[dict]:
    return [fake_batch(info, i, batch, seed) for i, info in enumerate(sessions)]


class FakeLoader(torch.utils.data.IterableDataset):
    """A fixed list of grouped batches, for driving a real ``pl.Trainer``."""

    def __init__(self, batches: list[list[dict]]):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def loader(batches: list[list[dict]]) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(FakeLoader(batches), batch_size=None)
