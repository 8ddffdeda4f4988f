"""Whether sessions are held on the training device: the pure decision and its inputs.

``auto`` holds them on an accelerator when their bytes fit in ``share`` of its memory
(the rest is the model's: activations at batch 256 x 33 lags take gigabytes), and keeps
the host path otherwise, and always on the CPU, where the device *is* the host and the
memory-mapped path already reads from the page cache.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

PLACEMENT_MODES = ("auto", "always", "never")
DEFAULT_SHARE = 0.4
GIB = 1024**3


@dataclass(frozen=True)
class Placement:
    """The decision and the one line that says why (logged once, by rank 0)."""

    resident: bool
    reason: str


def human_bytes(n: float) -> str:
    return f"{n / GIB:.2f} GiB" if n >= GIB else f"{n / 1024**2:.1f} MiB"


def device_capacity(device: torch.device) -> int | None:
    """Total memory of an accelerator in bytes; None for the CPU (it has no budget of its own)."""
    if device.type == "cuda" and torch.cuda.is_available():
        return int(torch.cuda.get_device_properties(device).total_memory)
    return None


def plan_placement(
    mode: str, device: torch.device, need_bytes: int, capacity_bytes: int | None, share: float
) -> Placement:
    """Hold the sessions on ``device`` or read them on the host (``mode``: auto/always/never)."""
    if mode not in PLACEMENT_MODES:
        raise ValueError(f"data placement mode {mode!r}; allowed: {list(PLACEMENT_MODES)}")
    need = human_bytes(need_bytes)
    if mode == "never":
        return Placement(False, f"sessions stay on the host ({need}; --data_on_device never)")
    if mode == "always":
        return Placement(True, f"sessions held on {device} ({need}; --data_on_device always)")
    if capacity_bytes is None:
        return Placement(
            False, f"sessions stay on the host ({need}; {device} has no memory budget)"
        )
    budget = share * capacity_bytes
    of = f"{human_bytes(budget)} = {share:g} x {human_bytes(capacity_bytes)} of {device}"
    if need_bytes <= budget:
        return Placement(True, f"sessions held on {device} ({need} <= {of})")
    return Placement(
        False,
        f"sessions stay on the host: they need {need}, more than {of}"
        " (--data_on_device_share raises the share)",
    )
