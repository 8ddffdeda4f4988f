"""Grouped batches (``list[dict]``, one dict per session) moved and decoded on the device.

The loader yields the stimulus and ``dfs`` in their storage dtypes (uint8 by default);
every other key is float32 already;
:func:`move_groups` copies them with ``non_blocking`` (from pinned memory when the loader
pins, so the copy overlaps the previous step) and :func:`decode_groups` turns them into
the float32 tensors the model contract promises, on the device.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from trainer.data.derived.storage import StimCodec


def move_groups(groups: list[dict], device: torch.device) -> list[dict]:
    """Every tensor of every group on ``device`` (``non_blocking``); other values as they are."""
    return [
        {
            key: value.to(device, non_blocking=True) if isinstance(value, torch.Tensor) else value
            for key, value in group.items()
        }
        for group in groups
    ]


def decode_groups(groups: list[dict], codecs: Sequence[StimCodec]) -> list[dict]:
    """Storage-dtype groups as the model's float32 batch (``codecs[dataset_idx]``)."""
    out = []
    for group in groups:
        decoded = {**group, "dfs": group["dfs"].to(torch.float32)}
        if "stim" in group:
            decoded["stim"] = codecs[group["dataset_idx"]].decode(group["stim"])
        out.append(decoded)
    return out
