"""Reading a session folder: lazily memory-mapped arrays and the stimulus storage dtypes.

The stimulus is generated as uint8 plus ``stim_scale``/``stim_offset`` in ``meta.json``.
``dset_dtype`` bfloat16 or float32 trades disk and page cache for a cheaper cast: a copy
``stim.<dtype>.npy`` is derived once (atomically, next to the original; bfloat16 is kept
as its uint16 bit pattern because numpy has no bfloat16) and memory-mapped like the rest.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

STIM_DTYPES = ("uint8", "bfloat16", "float32")
_CHUNK = 4096


def stim_file(session_dir: Path, dtype: str) -> Path:
    return session_dir / ("stim.npy" if dtype == "uint8" else f"stim.{dtype}.npy")


def _to_storage(frames_u8: np.ndarray, scale: float, offset: float, dtype: str) -> np.ndarray:
    values = frames_u8.astype(np.float32) * np.float32(scale) + np.float32(offset)
    if dtype == "float32":
        return values
    return torch.from_numpy(values).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)


def ensure_stim_copy(session_dir: Path, dtype: str) -> Path:
    """Path of the stimulus in ``dtype``, deriving it from the uint8 original if missing."""
    target = stim_file(session_dir, dtype)
    if dtype == "uint8" or target.is_file():
        return target
    meta = json.loads((session_dir / "meta.json").read_text())
    source = np.load(session_dir / "stim.npy", mmap_mode="r")
    np_dtype = np.float32 if dtype == "float32" else np.uint16
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=session_dir)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes it private; other pods/users must read it
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np_dtype, shape=source.shape)
        for start in range(0, source.shape[0], _CHUNK):
            block = np.asarray(source[start : start + _CHUNK])
            out[start : start + _CHUNK] = _to_storage(
                block, meta["stim_scale"], meta["stim_offset"], dtype
            )
        out.flush()
        del out
        os.replace(tmp, target)  # atomic; concurrent writers produce identical bytes
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def stim_to_float(block: np.ndarray, dtype: str, scale: float, offset: float) -> torch.Tensor:
    """Storage-dtype frames (any shape) as a float32 tensor in [-1, 1]."""
    tensor = torch.from_numpy(np.ascontiguousarray(block))
    if dtype == "uint8":
        return tensor.to(torch.float32).mul_(scale).add_(offset)
    if dtype == "bfloat16":
        return tensor.view(torch.bfloat16).to(torch.float32)
    return tensor


class SessionArrays:
    """A session's arrays, memory-mapped on first use in each process (picklable).

    Only paths travel to DataLoader workers; every worker opens its own maps, so pages
    come from the shared page cache and no array is copied per worker or per sample.
    """

    def __init__(self, session_dir: Path, stim_dtype: str = "uint8") -> None:
        if stim_dtype not in STIM_DTYPES:
            raise ValueError(f"stim_dtype must be one of {STIM_DTYPES}, got {stim_dtype!r}")
        self.session_dir = Path(session_dir)
        self.stim_dtype = stim_dtype
        self.meta = json.loads((self.session_dir / "meta.json").read_text())
        self._maps: dict[str, np.ndarray] = {}

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_maps": {}}

    def array(self, name: str) -> np.ndarray:
        if name not in self._maps:
            path = (
                stim_file(self.session_dir, self.stim_dtype)
                if name == "stim"
                else self.session_dir / f"{name}.npy"
            )
            self._maps[name] = np.load(path, mmap_mode="r")
        return self._maps[name]

    def stim_windows(self, frames: np.ndarray, n_lags: int) -> torch.Tensor:
        """Float32 ``(B, L, H, W)`` windows ending at each of ``frames`` (oldest first)."""
        rows = frames[:, None] + np.arange(1 - n_lags, 1)[None, :]
        block = self.array("stim")[rows]
        return stim_to_float(
            block, self.stim_dtype, self.meta["stim_scale"], self.meta["stim_offset"]
        )
