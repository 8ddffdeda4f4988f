"""Sessions held on the device once; batches gathered there from (session, bin) indices.

A host-path batch is 256 samples of 33 stimulus frames (plus behaviour, history...) read
from memory maps, stacked and copied over the bus every step. Here the loader yields only
each group's sample bins (a few KB); the rows of every ``keys_lags`` key are computed on the
device (``t - lag``, in the listed order) and read with one ``index_select`` per key. The
gathered groups equal the host path's bit for bit: same rows, same order, same storage
bytes (then the same decoding).

Under DDP every rank holds what its sampler can draw: the sharded sampler deals each rank
a slice of one permutation of *all* samples, so that is every session, on every rank's
own GPU (each rank decides whether they fit its device; when not, it reads them on the
host like today).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from trainer.data.derived.cache import DerivedSession
from trainer.data.derived.samples import Lags, stim_layout
from trainer.data.derived.storage import storage_tensor


def resident_bytes(sessions: Sequence[DerivedSession], keys_lags: Sequence[Mapping]) -> int:
    """Bytes the sessions' sample keys take on the device (from ``meta.json``: nothing read)."""
    total = 0
    for session, lags in zip(sessions, keys_lags, strict=True):
        for name in lags:
            entry = session.meta["arrays"][name]
            total += math.prod(entry["shape"]) * np.dtype(entry["dtype"]).itemsize
    return total


def _on_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A memory-mapped array copied to ``device`` (read once, in the storage dtype)."""
    return storage_tensor(np.array(array, copy=True)).to(device)


def _lag_tensor(lags: Lags, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(lags if isinstance(lags, list) else int(lags), device=device)


class ResidentSessions:
    """Every session's sample keys on one device, indexed by ``dataset_idx``."""

    def __init__(
        self,
        sessions: Sequence[DerivedSession],
        keys_lags: Sequence[Mapping[str, Lags]],
        device: torch.device,
    ) -> None:
        self.device = device
        self.keys_lags = [dict(k) for k in keys_lags]
        self.arrays = [
            {name: _on_device(session.array(name), device) for name in lags}
            for session, lags in zip(sessions, self.keys_lags, strict=True)
        ]
        self._lags = [
            {name: _lag_tensor(value, device) for name, value in lags.items()}
            for lags in self.keys_lags
        ]

    def gather(self, groups: list[dict]) -> list[dict]:
        """Index groups (``frames``, ``dataset_idx``, already on the device) as the host
        path's storage-dtype groups."""
        return [self._gather_one(group) for group in groups]

    def _gather_one(self, group: dict) -> dict:
        idx = group["dataset_idx"]
        bins = group["frames"].to(self.device, non_blocking=True)
        out: dict = {}
        for name, held in self.arrays[idx].items():
            lags = self._lags[idx][name]
            lagged = isinstance(self.keys_lags[idx][name], list)
            rows = bins[:, None] - lags[None, :] if lagged else bins - lags
            values = held.index_select(0, rows.reshape(-1)).view(*rows.shape, *held.shape[1:])
            out[name] = stim_layout(values, self.keys_lags[idx][name]) if name == "stim" else values
        out["dataset_idx"] = idx
        return out


class FrameIndexDataset(Dataset):
    """A multi-session dataset's samples as index groups (``MultiSessionDataset.frame_groups``).

    Nothing is read on the host, so its loader runs in the training process (no workers).
    """

    def __init__(self, samples) -> None:
        self.samples = samples  # a MultiSessionDataset

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        return self.samples.frame_groups([index])[0]

    def __getitems__(self, indices: list[int]) -> list[dict]:
        return self.samples.frame_groups(indices)
