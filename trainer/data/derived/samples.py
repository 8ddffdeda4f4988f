"""Samples of derived arrays with VisionCore's ``keys_lags``: which bins, and what each holds.

A sample is a bin ``t``; each key of ``keys_lags`` carries the value at ``t - lag``: an
integer lag gives the value alone (``robs: 0`` → ``(N,)``), a list gives a lag axis in the
listed order (``stim: [0..32]`` → ``(1, 33, H, W)`` with index 0 the current bin;
``history: [1..5]`` → ``(5, N)``), as VisionCore's ``CombinedEmbeddedDataset`` does.

A bin is a sample when the mask allows it (``dfs``: any unit valid, as VisionCore) and
every lag of every key stays inside the bin's trial, so no sample mixes two trials (or two
stimulus types: their trial ids differ). Train and validation are split by whole trials,
per stimulus type, with the config's seed (VisionCore's ``split_inds_by_trial``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from trainer.data.derived.cache import DerivedSession
from trainer.data.derived.storage import storage_tensor
from trainer.data.transforms import split_by_trials

Lags = int | list[int]
# Keys decoded on the device (stored in a compact dtype); the rest are float32 already.
STORED_KEYS = ("stim", "dfs")


def max_lag(keys_lags: Mapping[str, Lags]) -> int:
    return max(max(v) if isinstance(v, list) else v for v in keys_lags.values())


def sample_bins(trial_ids: np.ndarray, dfs: np.ndarray, deepest: int) -> np.ndarray:
    """Bins whose every lag (back to ``t - deepest``) lies in ``t``'s trial and that the
    mask allows (any unit). Trials are contiguous runs of one id."""
    t = np.arange(deepest, trial_ids.shape[0])
    inside = trial_ids[t - deepest] == trial_ids[t]
    allowed = np.asarray(dfs[t]).any(axis=1)
    return t[inside & allowed]


def split_samples(
    session: DerivedSession, bins: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) bins, whole trials on one side, drawn per stimulus type."""
    trial_ids = session.array("trial_ids")
    train, val = [], []
    for segment in session.meta["segments"]:
        start, stop = segment["start"], segment["stop"]
        mine = bins[(bins >= start) & (bins < stop)] - start
        ids = np.asarray(trial_ids[start:stop]) - segment["trial_shift"]
        tr, va = split_by_trials(ids, mine, fraction, seed)
        train.append(tr + start)
        val.append(va + start)
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def lag_rows(bins: np.ndarray, lags: Lags) -> np.ndarray:
    """Rows to read: ``(B,)`` for one lag, ``(B, L)`` for a list (listed order)."""
    if isinstance(lags, list):
        return bins[:, None] - np.asarray(lags, dtype=np.int64)[None, :]
    return bins - int(lags)


def stim_layout(values: torch.Tensor, lags: Lags) -> torch.Tensor:
    """Gathered stimulus rows as VisionCore's sample layout: ``(B, C, L, H, W)`` for a lag
    list (C = 1 when the stored frames have no channel axis), ``(B, C, H, W)`` for one lag."""
    lagged = isinstance(lags, list)
    spatial = values.dim() - (2 if lagged else 1)
    if spatial == 2:  # (B, [L,] H, W): no channel axis stored
        return values.unsqueeze(1)
    return values.permute(0, 2, 1, 3, 4) if lagged else values


class LaggedSessionDataset(torch.utils.data.Dataset):
    """The samples of one session at the given bins."""

    def __init__(
        self,
        session: DerivedSession,
        bins: np.ndarray,
        keys_lags: Mapping[str, Lags],
        dataset_idx: int,
    ) -> None:
        self.arrays = session
        self.frames = np.asarray(bins, dtype=np.int64)
        self.keys_lags = dict(keys_lags)
        self.dataset_idx = dataset_idx

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    def fetch(self, local: np.ndarray) -> dict[str, torch.Tensor]:
        """Batched samples for local indices: one fancy-index read per key.

        ``stim`` and ``dfs`` stay in their stored dtypes (decoded on the device after the
        copy, ``trainer.data.transfer``); the rest are float32.
        """
        bins = self.frames[local]
        batch = {}
        for key, lags in self.keys_lags.items():
            values = self.arrays.array(key)[lag_rows(bins, lags)]
            if key in STORED_KEYS:
                tensor = storage_tensor(values)
                batch[key] = stim_layout(tensor, lags) if key == "stim" else tensor
            else:
                batch[key] = torch.from_numpy(np.asarray(values, dtype=np.float32))
        return batch

    def __getitem__(self, index: int) -> dict:
        batch = self.fetch(np.asarray([index]))
        return {**{k: v[0] for k, v in batch.items()}, "dataset_idx": self.dataset_idx}

    def contrast(self) -> np.ndarray:
        """Mean frame contrast over each sample's stimulus lags (the curriculum's score)."""
        lags = self.keys_lags.get("stim", 0)
        rows = lag_rows(self.frames, lags if isinstance(lags, list) else [lags])
        return np.asarray(self.arrays.array("contrast")[rows], dtype=np.float32).mean(axis=1)
