"""Forward+backward time of every VisionCore model config, next to a plain-PyTorch floor.

Each config of ``tests/trainer/models/visioncore_configs`` (VisionCore's, unchanged) is
built for two sessions of its own working size (51x51 after the adapter, 24 lags, 42
behaviour columns) and timed at batch 8 on one thread: one training step's forward and
backward, median of ``REPS``. The floor is the same network restated as plain PyTorch
modules: every parametrized kernel (window x weight norm) baked into an ordinary
``nn.Conv3d`` weight, so the ratio is what the parametrizations and the model's plumbing
cost on top of the convolutions themselves.
"""

from __future__ import annotations

import copy
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from torch.nn.utils import parametrize

CONFIGS = Path(__file__).resolve().parents[1] / "tests/trainer/models/visioncore_configs"
BATCH, LAGS, SIZE, BEHAVIOUR, REPS = 8, 24, 51, 42, 3
TARGET_RATIO = 1.5


def plain_copy(model: torch.nn.Module) -> torch.nn.Module:
    """The same network with every parametrization baked into a plain weight tensor."""
    floor = copy.deepcopy(model)
    for module in floor.modules():
        if parametrize.is_parametrized(module):
            for name in list(module.parametrizations):
                parametrize.remove_parametrizations(module, name, leave_parametrized=True)
    return floor


def step_ms(model: torch.nn.Module, history: bool) -> float:
    """Median milliseconds of forward + backward on one session's batch."""
    g = torch.Generator().manual_seed(0)
    stim = torch.randn(BATCH, 1, LAGS, SIZE, SIZE, generator=g)
    beh = torch.randn(BATCH, BEHAVIOUR, generator=g)
    hist = torch.randn(BATCH, 5, 6, generator=g) if history else None
    times = []
    for _ in range(REPS + 1):
        model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        model(stim, 0, beh, hist).sum().backward()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:]) * 1000


def run() -> list[dict[str, Any]]:
    from trainer.configs.model_schema import load_model_config
    from trainer.data.datasets import SessionInfo
    from trainer.models import build_model

    torch.set_num_threads(1)
    sessions = [
        SessionInfo(f"s{i}", n, LAGS, (SIZE, SIZE), BEHAVIOUR, (0.2,) * n, "backimage")
        for i, n in enumerate((6, 4))
    ]
    rows = []
    for path in sorted(CONFIGS.glob("*.yaml")):
        config = load_model_config(path)
        torch.manual_seed(0)
        model = build_model(config, sessions).train()
        history = config["model_type"] == "v1multi_history"
        ours, floor = step_ms(model, history), step_ms(plain_copy(model), history)
        rows += [
            {"name": f"{path.stem} fwd+bwd (batch {BATCH}, 1 thread)", "value": ours,
             "unit": "ms", "target": "-", "ok": None},
            {"name": "  plain-PyTorch floor", "value": floor, "unit": "ms", "target": "-",
             "ok": None},
            {"name": "  ours / floor", "value": ours / floor, "unit": "ratio",
             "target": f"<= {TARGET_RATIO}", "ok": ours / floor <= TARGET_RATIO},
        ]  # fmt: skip
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
