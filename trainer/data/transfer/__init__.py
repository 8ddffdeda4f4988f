"""Batches on their way to the device: storage bytes over the bus, decoding on the device.

``codec``: grouped batches moved (pinned, ``non_blocking``) and decoded to float32 on the
device. ``resident``: sessions held on the device once, batches gathered there from
(session, frame) indices. ``placement``: whether they fit (the pure decision).
"""

from trainer.data.transfer.codec import decode_groups, move_groups
from trainer.data.transfer.placement import (
    PLACEMENT_MODES,
    Placement,
    device_capacity,
    plan_placement,
)
from trainer.data.transfer.resident import FrameIndexDataset, ResidentSessions, resident_bytes

__all__ = [
    "PLACEMENT_MODES",
    "FrameIndexDataset",
    "Placement",
    "ResidentSessions",
    "decode_groups",
    "device_capacity",
    "move_groups",
    "plan_placement",
    "resident_bytes",
]
