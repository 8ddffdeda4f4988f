"""Per-session and multi-session datasets of lagged stimulus windows.

A sample is the frame ``t`` at which spikes are counted plus the ``n_lags`` frames ending
at ``t`` (index ``-1`` of the lag axis is the current frame). Only windows that lie inside
one trial are samples, and train/validation are split by whole trials, so no stimulus
frame of a validation sample is ever part of a training window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from trainer.data.session_store import SessionArrays


@dataclass(frozen=True)
class SessionInfo:
    """Shape and statistics of one session: what the model builds each readout from."""

    name: str
    n_units: int
    n_lags: int
    image_shape: tuple[int, int]
    behavior_dim: int
    mean_rates: tuple[float, ...]  # spikes per bin per unit, on the training split
    stim_type: str


@dataclass(frozen=True)
class TrialSplit:
    """Frame indices (sample end frames) of the training and validation samples."""

    train: np.ndarray
    val: np.ndarray


def valid_frames(trial_ids: np.ndarray, n_lags: int) -> np.ndarray:
    """Frames whose ``n_lags`` window does not cross a trial boundary (trials contiguous)."""
    t = np.arange(n_lags - 1, trial_ids.shape[0])
    return t[trial_ids[t - (n_lags - 1)] == trial_ids[t]]


def split_by_trials(
    trial_ids: np.ndarray, n_lags: int, train_fraction: float, seed: int
) -> TrialSplit:
    """Seeded split of whole trials; at least one trial on each side."""
    trials = np.unique(trial_ids)
    order = np.random.default_rng(seed).permutation(trials)
    n_train = min(max(round(train_fraction * trials.size), 1), trials.size - 1)
    frames = valid_frames(trial_ids, n_lags)
    is_train = np.isin(trial_ids[frames], order[:n_train])
    return TrialSplit(train=frames[is_train], val=frames[~is_train])


def masked_mean_rates(robs: np.ndarray, dfs: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Mean spikes per bin per unit over ``frames`` where the unit was recorded."""
    counts = (robs[frames].astype(np.float64) * dfs[frames]).sum(0)
    observed = dfs[frames].astype(np.float64).sum(0)
    return np.maximum(counts / np.maximum(observed, 1.0), 1e-4)


class SessionDataset(Dataset):
    """Samples of one session at the given end frames."""

    def __init__(self, arrays: SessionArrays, frames: np.ndarray, n_lags: int, dataset_idx: int):
        self.arrays = arrays
        self.frames = np.asarray(frames, dtype=np.int64)
        self.n_lags = n_lags
        self.dataset_idx = dataset_idx

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    def fetch(self, local: np.ndarray) -> dict[str, torch.Tensor]:
        """Batched arrays for local sample indices: one gather per array, no full copies.

        The stimulus and ``dfs`` stay in their storage dtypes (uint8 by default): they are
        decoded on the device after the copy (``trainer.data.transfer``), so the host
        moves a quarter of the bytes float32 would take.
        """
        t = self.frames[local]
        a = self.arrays
        return {
            "stim": a.stim_storage_windows(t, self.n_lags).unsqueeze(1),
            "robs": torch.from_numpy(np.asarray(a.array("robs")[t], dtype=np.float32)),
            "dfs": torch.from_numpy(np.ascontiguousarray(a.array("dfs")[t])),
            "behavior": torch.from_numpy(np.asarray(a.array("behavior")[t], dtype=np.float32)),
        }

    def __getitem__(self, index: int) -> dict:
        batch = self.fetch(np.asarray([index]))
        return {**{k: v[0] for k, v in batch.items()}, "dataset_idx": self.dataset_idx}

    def contrast(self, window: int = 1) -> np.ndarray:
        """Mean frame contrast over the last ``window`` frames of each sample's window."""
        rows = self.frames[:, None] - np.arange(window)[None, :]
        per_frame = self.arrays.array("contrast")
        return np.asarray(per_frame[rows], dtype=np.float32).mean(axis=1)


class MultiSessionDataset(Dataset):
    """Concatenation of session datasets with a batched ``__getitems__``.

    PyTorch's DataLoader calls ``__getitems__`` with a whole batch of indices; samples are
    gathered per session with one fancy-index read each instead of one read per sample.
    """

    def __init__(self, datasets: list[SessionDataset]) -> None:
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

    def contrast(self, window: int = 1) -> np.ndarray:
        """Per-sample stimulus contrast in global index order (contrast-weighted sampling)."""
        return np.concatenate([d.contrast(window) for d in self.datasets])
