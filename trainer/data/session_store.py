"""Reading a session folder: lazily memory-mapped arrays and the stimulus storage dtypes.

The stimulus is generated as uint8 plus ``stim_scale``/``stim_offset`` in ``meta.json``.
``dset_dtype`` bfloat16 or float32 trades disk and page cache for a cheaper cast: a copy
``stim.<dtype>.npy`` is derived once (atomically, next to the original; bfloat16 is kept
as its uint16 bit pattern because numpy has no bfloat16) and memory-mapped like the rest.

Opening a session checks ``meta.json`` and every array's header and size (no array data
is read): a damaged file is a :class:`DataError` naming it at start-up, not a
``ValueError`` from ``np.load`` or a SIGBUS when training reaches a missing page.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainer.contract.errors import DataError, storage_error
from trainer.synthetic.store import npy_problem, read_meta, read_npy_header

STIM_DTYPES = ("uint8", "bfloat16", "float32")
_CHUNK = 4096
# What training reads of a session; all are indexed by frame (first axis = time).
TRAINING_ARRAYS = ("stim", "robs", "dfs", "behavior", "trial_ids", "contrast")
_META_KEYS = ("stim_scale", "stim_offset", "n_units", "image_shape", "stim_type")
_FIX = "restore the session from its source (a synthetic one is regenerated when damaged)"
_STORAGE = {"float32": np.float32, "bfloat16": np.uint16}


def stim_file(session_dir: Path, dtype: str) -> Path:
    return session_dir / ("stim.npy" if dtype == "uint8" else f"stim.{dtype}.npy")


def _to_storage(frames_u8: np.ndarray, scale: float, offset: float, dtype: str) -> np.ndarray:
    values = frames_u8.astype(np.float32) * np.float32(scale) + np.float32(offset)
    if dtype == "float32":
        return values
    return torch.from_numpy(values).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)


def _stim_copy_problem(target: Path, source: Path, dtype: str) -> str | None:
    """What is wrong with a derived stimulus copy (header and size vs the original)."""
    try:
        shape = read_npy_header(source)[0]
    except (OSError, ValueError, EOFError, SyntaxError):
        return None  # the original's own check (SessionArrays) reports it
    return npy_problem(target, {"dtype": np.dtype(_STORAGE[dtype]).str, "shape": list(shape)})


def ensure_stim_copy(session_dir: Path, dtype: str) -> Path:
    """Path of the stimulus in ``dtype``, deriving it from the uint8 original if missing.

    A damaged copy (truncated by a full disk, say) is derived again: it is a cache.
    """
    target = stim_file(session_dir, dtype)
    if dtype == "uint8":
        return target
    source = session_dir / "stim.npy"
    if target.is_file():
        problem = _stim_copy_problem(target, source, dtype)
        if problem is None:
            return target
        print(f"{target}: {problem}; deriving it again from {source.name}", flush=True)
    meta = read_meta(session_dir)
    _derive(np.load(source, mmap_mode="r"), target, meta, dtype)
    return target


def _derive(source: np.ndarray, target: Path, meta: dict[str, Any], dtype: str) -> None:
    """Write the converted stimulus with plain writes, then rename it into place.

    Plain writes, not a writable memory map: on a full volume a write raises ENOSPC (an
    error naming the file, retryable), while a store into a mapped page kills the process
    with SIGBUS.
    """
    np_dtype = np.dtype(_STORAGE[dtype])
    header = {"descr": np.lib.format.dtype_to_descr(np_dtype), "fortran_order": False}
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes it private; other pods/users must read it
        with os.fdopen(fd, "wb") as out:
            np.lib.format.write_array_header_1_0(out, {**header, "shape": source.shape})
            for start in range(0, source.shape[0], _CHUNK):
                block = np.asarray(source[start : start + _CHUNK])
                values = _to_storage(block, meta["stim_scale"], meta["stim_offset"], dtype)
                out.write(np.ascontiguousarray(values, dtype=np_dtype).tobytes())
        os.replace(tmp, target)  # atomic; concurrent writers produce identical bytes
    except OSError as error:
        converted = storage_error(error, target)
        if converted is None:
            raise
        raise converted from error
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def storage_tensor(block: np.ndarray) -> torch.Tensor:
    """Frames in their storage dtype as a tensor that every device can hold.

    bfloat16 bits travel as int16 (torch moves int16 everywhere; uint16 support is partial)
    and are reinterpreted on the device by :meth:`StimCodec.decode`.
    """
    block = np.ascontiguousarray(block)
    if block.dtype == np.uint16:
        block = block.view(np.int16)
    return torch.from_numpy(block)


@dataclass(frozen=True)
class StimCodec:
    """How a session's stored stimulus becomes float32 pixels in [-1, 1].

    Decoding is per pixel and runs wherever the tensor is (on the GPU after the copy), so
    the host gathers and moves storage bytes, not float32. The arithmetic is the same on
    every device (a cast, one multiply, one add, each rounded to float32), so a batch
    decoded on the GPU equals the one decoded on the host bit for bit.
    """

    dtype: str
    scale: float
    offset: float

    def decode(self, stored: torch.Tensor) -> torch.Tensor:
        if self.dtype == "uint8":
            return stored.to(torch.float32).mul_(self.scale).add_(self.offset)
        if self.dtype == "bfloat16":
            return stored.view(torch.bfloat16).to(torch.float32)
        return stored


def stim_to_float(block: np.ndarray, dtype: str, scale: float, offset: float) -> torch.Tensor:
    """Storage-dtype frames (any shape) as a float32 tensor in [-1, 1], on the host."""
    return StimCodec(dtype, scale, offset).decode(storage_tensor(block))


class SessionArrays:
    """A session's arrays, memory-mapped on first use in each process (picklable).

    Only paths travel to DataLoader workers; every worker opens its own maps, so pages
    come from the shared page cache and no array is copied per worker or per sample.
    Construction checks the folder (meta.json, headers, sizes: :meth:`check`), so a
    damaged session fails here as one :class:`DataError` naming the file.
    """

    def __init__(self, session_dir: Path, stim_dtype: str = "uint8") -> None:
        if stim_dtype not in STIM_DTYPES:
            raise ValueError(f"stim_dtype must be one of {STIM_DTYPES}, got {stim_dtype!r}")
        self.session_dir = Path(session_dir)
        self.stim_dtype = stim_dtype
        self.meta = read_meta(self.session_dir)
        self._maps: dict[str, np.ndarray] = {}
        self.check()

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_maps": {}}

    def path_of(self, name: str) -> Path:
        if name == "stim":
            return stim_file(self.session_dir, self.stim_dtype)
        return self.session_dir / f"{name}.npy"

    def check(self) -> None:
        """Raise a :class:`DataError` naming the first damaged file (headers only).

        Beyond each file's own header and size: the recorded dtype and shape when
        ``meta.json`` lists them, one length of time for every array, and ``robs``/``dfs``
        of ``n_units`` columns, since any mismatch would surface mid-epoch as an
        ``IndexError`` that names nothing.
        """
        meta_file = self.session_dir / "meta.json"
        missing = [key for key in _META_KEYS if key not in self.meta]
        if missing:
            raise DataError(meta_file, f"lacks {', '.join(missing)}; {_FIX}")
        recorded = self.meta.get("arrays") if isinstance(self.meta.get("arrays"), dict) else {}
        shapes: dict[str, tuple[int, ...]] = {}
        for name in TRAINING_ARRAYS:
            path = self.path_of(name)
            expected = recorded.get(name) if path.name == f"{name}.npy" else None
            problem = npy_problem(path, expected if isinstance(expected, dict) else None)
            if problem is not None:
                raise DataError(path, f"{problem}; {_FIX}")
            shapes[name] = read_npy_header(path)[0]
        n_frames = shapes["stim"][0] if shapes["stim"] else 0
        for name, shape in shapes.items():
            if not shape or shape[0] != n_frames:
                raise DataError(
                    self.path_of(name),
                    f"shape {list(shape)}: expected {n_frames} frames like stim; {_FIX}",
                )
        n_units = int(self.meta["n_units"])
        for name in ("robs", "dfs"):
            if len(shapes[name]) != 2 or shapes[name][1] != n_units:
                raise DataError(
                    self.path_of(name),
                    f"shape {list(shapes[name])}: meta.json says n_units={n_units}; {_FIX}",
                )

    def array(self, name: str) -> np.ndarray:
        if name not in self._maps:
            path = self.path_of(name)
            try:
                self._maps[name] = np.load(path, mmap_mode="r")
            except (ValueError, EOFError) as error:  # damaged after the check at open
                raise DataError(path, f"cannot be memory-mapped ({error}); {_FIX}") from None
        return self._maps[name]

    @property
    def codec(self) -> StimCodec:
        return StimCodec(self.stim_dtype, self.meta["stim_scale"], self.meta["stim_offset"])

    def stim_storage_windows(self, frames: np.ndarray, n_lags: int) -> torch.Tensor:
        """``(B, L, H, W)`` windows ending at each of ``frames`` (oldest first), in the
        storage dtype: one fancy-index read of the memory map, no conversion."""
        rows = frames[:, None] + np.arange(1 - n_lags, 1)[None, :]
        return storage_tensor(self.array("stim")[rows])

    def stim_windows(self, frames: np.ndarray, n_lags: int) -> torch.Tensor:
        """Float32 ``(B, L, H, W)`` windows decoded on the host (the reference path)."""
        return self.codec.decode(self.stim_storage_windows(frames, n_lags))
