"""Batches grouped by dataset: one dict per session present, as the readouts need."""

from __future__ import annotations

from collections import defaultdict

import torch

BATCH_KEYS = ("stim", "robs", "dfs", "behavior")


def group_collate(samples: list[dict]) -> list[dict]:
    """Stack samples per ``dataset_idx``; groups ordered by ``dataset_idx``.

    Sessions have different unit counts, so ``robs``/``dfs`` cannot share one tensor;
    each group is a regular batch for that session's readout.
    """
    groups: dict[int, list[dict]] = defaultdict(list)
    for sample in samples:
        groups[int(sample["dataset_idx"])].append(sample)
    return [
        {
            **{key: torch.stack([s[key] for s in members]) for key in BATCH_KEYS},
            "dataset_idx": idx,
        }
        for idx, members in sorted(groups.items())
    ]
