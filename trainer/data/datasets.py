"""Samples of several sessions as one dataset, and each session's shape for the model.

A session's samples are ``trainer.data.derived.samples.LaggedSessionDataset`` (VisionCore's
``keys_lags``: index 0 of a lag axis is the current bin); here they are concatenated, read
in one batched call per session, and described (:class:`SessionInfo`) for building readouts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from trainer.data.derived.cache import DerivedSession
from trainer.data.derived.samples import LaggedSessionDataset


@dataclass(frozen=True)
class SessionInfo:
    """Shape and statistics of one session: what the model builds each readout from."""

    name: str
    n_units: int
    n_lags: int  # stimulus lags per sample (0: no stimulus)
    image_shape: tuple[int, int]
    behavior_dim: int
    mean_rates: tuple[float, ...]  # spikes per bin per unit, on the training split
    stim_type: str  # the session's stimulus types, joined by "+"


def session_info(
    name: str, session: DerivedSession, keys_lags: Mapping, rates: np.ndarray
) -> SessionInfo:
    """A session's :class:`SessionInfo` from its derived arrays and the sample keys."""
    stim_lags = keys_lags.get("stim")
    n_lags = 0 if stim_lags is None else len(stim_lags) if isinstance(stim_lags, list) else 1
    image = session.shape_of("stim")[-2:] if "stim" in session.keys else (0, 0)
    behavior = session.shape_of("behavior")[-1] if "behavior" in keys_lags else 0
    return SessionInfo(
        name=name,
        n_units=int(session.meta["n_units"]),
        n_lags=n_lags,
        image_shape=(int(image[0]), int(image[1])),
        behavior_dim=int(behavior),
        mean_rates=tuple(float(r) for r in rates),
        stim_type="+".join(session.meta["types"]),
    )


def masked_mean_rates(robs: np.ndarray, dfs: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Mean spikes per bin per unit over ``frames`` where the unit was recorded."""
    counts = (robs[frames].astype(np.float64) * dfs[frames]).sum(0)
    observed = dfs[frames].astype(np.float64).sum(0)
    return np.maximum(counts / np.maximum(observed, 1.0), 1e-4)


class MultiSessionDataset(Dataset):
    """Concatenation of session datasets with a batched ``__getitems__``.

    PyTorch's DataLoader calls ``__getitems__`` with a whole batch of indices; samples are
    gathered per session with one fancy-index read each instead of one read per sample.
    """

    def __init__(self, datasets: list[LaggedSessionDataset]) -> None:
        self.datasets = datasets
        self.offsets = np.cumsum([0] + [len(d) for d in datasets])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def locate(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(session position, local index) of global indices."""
        which = np.searchsorted(self.offsets, indices, side="right") - 1
        return which, indices - self.offsets[which]

    def __getitem__(self, index: int) -> dict:
        which, local = self.locate(np.asarray([index]))
        return self.datasets[which[0]][int(local[0])]

    def __getitems__(self, indices: list[int]) -> list[dict]:
        """The batch already grouped by session (what ``group_collate`` would make of the
        samples, without splitting and re-stacking them): groups in ``dataset_idx`` order,
        samples within a group in batch order. The loader collates with ``keep_groups``."""
        idx = np.asarray(indices, dtype=np.int64)
        which, local = self.locate(idx)
        groups = []
        for pos in np.unique(which):
            ds = self.datasets[pos]
            groups.append({**ds.fetch(local[which == pos]), "dataset_idx": ds.dataset_idx})
        return groups

    def frame_groups(self, indices: list[int]) -> list[dict]:
        """The same grouping as :meth:`__getitems__`, as end frames only (no reads): what a
        batch is when the sessions live on the device (``trainer.data.transfer``)."""
        idx = np.asarray(indices, dtype=np.int64)
        which, local = self.locate(idx)
        return [
            {
                "frames": torch.from_numpy(self.datasets[pos].frames[local[which == pos]]),
                "dataset_idx": self.datasets[pos].dataset_idx,
            }
            for pos in np.unique(which)
        ]

    def contrast(self) -> np.ndarray:
        """Per-sample stimulus contrast in global index order (contrast-weighted sampling)."""
        return np.concatenate([d.contrast() for d in self.datasets])
