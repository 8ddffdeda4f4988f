"""Stimulus storage dtypes: how stored bytes travel and become float32 on the device.

A derived stimulus is stored as uint8 pixels plus an affine codec (``scale * u8 +
offset``: the config's stim ops were per-pixel affine), or as float32, or as bfloat16 kept
as its uint16 bit pattern (numpy has no bfloat16). The host gathers and moves the stored
bytes; decoding runs wherever the tensor is, with the same arithmetic on every device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

STIM_DTYPES = ("uint8", "bfloat16", "float32")


def storage_tensor(block: np.ndarray) -> torch.Tensor:
    """Stored values as a tensor that every device can hold.

    bfloat16 bits travel as int16 (torch moves int16 everywhere; uint16 support is partial)
    and are reinterpreted on the device by :meth:`StimCodec.decode`.
    """
    block = np.ascontiguousarray(block)
    if block.dtype == np.uint16:
        block = block.view(np.int16)
    return torch.from_numpy(block)


@dataclass(frozen=True)
class StimCodec:
    """How a session's stored stimulus becomes float32 values.

    A cast, one multiply, one add, each rounded to float32: a batch decoded on the GPU
    equals the one decoded on the host bit for bit.
    """

    dtype: str
    scale: float = 1.0
    offset: float = 0.0

    def decode(self, stored: torch.Tensor) -> torch.Tensor:
        if self.dtype == "uint8":
            return stored.to(torch.float32).mul_(self.scale).add_(self.offset)
        if self.dtype == "bfloat16":
            return stored.view(torch.bfloat16).to(torch.float32)
        return stored


def codec_of(stim_meta: dict | None) -> StimCodec:
    """The codec a derived session's ``meta.json`` ``stim`` entry records."""
    if not stim_meta:
        return StimCodec("float32")
    if stim_meta["storage"] == "uint8":
        scale, offset = stim_meta["codec"]
        return StimCodec("uint8", float(scale), float(offset))
    return StimCodec(stim_meta["storage"])
