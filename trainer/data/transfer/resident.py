"""Sessions held on the device once; batches gathered there from (session, frame) indices.

A host-path batch is 256 windows of 33 frames read from memory maps, stacked and copied
over the bus every step. Here the loader yields only each group's end frames (a few KB);
the window rows are computed on the device and read with one ``index_select`` per array.
The gathered groups equal the host path's bit for bit: same frames, same order, same
storage bytes (then the same decoding).

Under DDP every rank holds what its sampler can draw: the sharded sampler deals each rank
a slice of one permutation of *all* samples, so that is every session, on every rank's
own GPU (each rank decides whether they fit its device; when not, it reads them on the
host like today).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from trainer.data.session_store import SessionArrays, storage_tensor
from trainer.synthetic.store import read_npy_header

RESIDENT_ARRAYS = ("stim", "robs", "dfs", "behavior")


def resident_bytes(arrays: Sequence[SessionArrays]) -> int:
    """Bytes the sessions take on the device (from the ``.npy`` headers: nothing is read)."""
    total = 0
    for session in arrays:
        for name in RESIDENT_ARRAYS:
            shape, dtype, _ = read_npy_header(session.path_of(name))
            total += math.prod(shape) * dtype.itemsize
    return total


def _on_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A memory-mapped array copied to ``device`` (read once, in the storage dtype)."""
    return storage_tensor(np.array(array, copy=True)).to(device)


class ResidentSessions:
    """Every session's training arrays on one device, indexed by ``dataset_idx``."""

    def __init__(self, arrays: Sequence[SessionArrays], n_lags: int, device: torch.device):
        self.device = device
        self.n_lags = n_lags
        self.arrays = [
            {name: _on_device(session.array(name), device) for name in RESIDENT_ARRAYS}
            for session in arrays
        ]
        self._lags = torch.arange(1 - n_lags, 1, device=device)

    def gather(self, groups: list[dict]) -> list[dict]:
        """Index groups (``frames``, ``dataset_idx``, already on the device) as the host
        path's storage-dtype groups."""
        return [self._gather_one(group) for group in groups]

    def _gather_one(self, group: dict) -> dict:
        held = self.arrays[group["dataset_idx"]]
        frames = group["frames"].to(self.device, non_blocking=True)
        rows = (frames[:, None] + self._lags[None, :]).reshape(-1)
        stim = held["stim"]
        windows = stim.index_select(0, rows).view(frames.shape[0], 1, self.n_lags, *stim.shape[1:])
        return {
            "stim": windows,
            "robs": held["robs"].index_select(0, frames),
            "dfs": held["dfs"].index_select(0, frames),
            "behavior": held["behavior"].index_select(0, frames),
            "dataset_idx": group["dataset_idx"],
        }


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
