"""Forward+backward time of every VisionCore model config, next to a plain-PyTorch floor;
and whether ``--compile`` pays on this CPU.

Each config of ``tests/trainer/models/visioncore_configs`` (VisionCore's, unchanged) is
built for two sessions at its own input size: its adapter's ``grid_size`` square (51 in
all of them) and the lags of the VisionCore dataset config its run scripts train it on
(``LAGS``: 33 stimulus lags at 120 Hz, ``multi_basic_120_backimage_long``/``_history``;
10 for the cones model, ``multi_cones_120``), 42 behaviour columns. Timed at batch 8 on
one thread: one training step's forward and backward, median of ``REPS``, CPU time (the
machine may be shared). The floor is the same network restated as plain PyTorch modules:
every parametrized kernel (window x weight norm) baked into an ordinary ``nn.Conv3d``
weight, so the ratio is what the parametrizations and the model's plumbing cost on top
of the convolutions themselves.

Compile rows: ``res_small`` at the quality benchmark's size (24 x 24 px, 10 lags, batch
64, bf16 autocast where the CPU has native bf16, as ``make bench ONLY=quality`` trains it)
and one VisionCore config (fp32, batch 8): eager vs ``model.compile_core()`` (inductor),
the outputs compared, and the one-off compile cost in CPU seconds.
"""

from __future__ import annotations

import contextlib
import copy
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.nn.utils import parametrize

CONFIGS = Path(__file__).resolve().parents[1] / "tests/trainer/models/visioncore_configs"
BATCH, BEHAVIOUR, REPS = 8, 42, 3
LAGS = {"cones_res_small_gru_optimized": 10}
DEFAULT_LAGS, DEFAULT_SIZE = 33, 51
TARGET_RATIO = 1.5
COMPILE_REPS = 5


def plain_copy(model: torch.nn.Module) -> torch.nn.Module:
    """The same network with every parametrization baked into a plain weight tensor.

    Not ``remove_parametrizations``: a deep copy shares each module's generated
    ``Parametrized*`` class with the original, and removal deletes the property from that
    class, which breaks the original model.
    """
    floor = copy.deepcopy(model)
    for module in floor.modules():
        if parametrize.is_parametrized(module):
            baked = {
                name: getattr(module, name).detach().clone() for name in module.parametrizations
            }
            module.__class__ = module.__class__.__bases__[0]  # the plain class, e.g. Conv3d
            del module.parametrizations
            for name, weight in baked.items():
                module.register_parameter(name, torch.nn.Parameter(weight))
    return floor


def input_size(config: dict[str, Any], stem: str) -> tuple[int, int]:
    """``(lags, pixels)`` the config is trained at in VisionCore (module docstring)."""
    adapter = config["adapter"]
    size = adapter["params"].get("grid_size", DEFAULT_SIZE) if adapter["type"] != "none" else 0
    return LAGS.get(stem, DEFAULT_LAGS), size or DEFAULT_SIZE


def cpu_ms(step: Callable[[], Any], reps: int) -> float:
    """Median CPU milliseconds of ``step`` after one warm-up call."""
    step()
    times = []
    for _ in range(reps):
        start = time.process_time()
        step()
        times.append(time.process_time() - start)
    return statistics.median(times) * 1000


def train_step(model: torch.nn.Module, inputs: tuple, bf16: bool = False) -> Callable[[], Any]:
    """Forward + backward of one session's batch."""

    def step() -> torch.Tensor:
        model.zero_grad(set_to_none=True)
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with autocast:
            out = model(*inputs)
        out.float().sum().backward()
        return out.detach()

    return step


def sessions_for(lags: int, size: int, behaviour: int, units=(6, 4)) -> list:
    from trainer.data.datasets import SessionInfo

    return [
        SessionInfo(f"s{i}", n, lags, (size, size), behaviour, (0.2,) * n, "backimage")
        for i, n in enumerate(units)
    ]


def zoo_rows() -> list[dict[str, Any]]:
    from trainer.configs.model_schema import load_model_config
    from trainer.models import build_model

    rows = []
    for path in sorted(CONFIGS.glob("*.yaml")):
        config = load_model_config(path)
        lags, size = input_size(config, path.stem)
        torch.manual_seed(0)
        model = build_model(config, sessions_for(lags, size, BEHAVIOUR)).train()
        g = torch.Generator().manual_seed(0)
        stim = torch.randn(BATCH, 1, lags, size, size, generator=g)
        beh = torch.randn(BATCH, BEHAVIOUR, generator=g)
        history = config["model_type"] == "v1multi_history"
        num_lags = config["history_encoder"]["params"]["num_lags"] if history else 0
        hist = torch.randn(BATCH, num_lags, 6, generator=g) if history else None
        inputs = (stim, 0, beh, hist)
        floor_model = plain_copy(model)  # before any step: spectral norm's weight is a
        # computed (non-leaf) tensor after a training pass, which deepcopy refuses
        ours = cpu_ms(train_step(model, inputs), REPS)
        floor = cpu_ms(train_step(floor_model, inputs), REPS)
        rows += [
            {"name": f"{path.stem} fwd+bwd ({lags} lags, {size}px, batch {BATCH}, 1 thread)",
             "value": ours, "unit": "CPU ms", "target": "-", "ok": None},
            {"name": "  plain-PyTorch floor", "value": floor, "unit": "CPU ms", "target": "-",
             "ok": None},
            {"name": "  ours / floor", "value": ours / floor, "unit": "ratio",
             "target": f"<= {TARGET_RATIO}", "ok": ours / floor <= TARGET_RATIO},
        ]  # fmt: skip
    return rows


def compile_rows(label: str, model: torch.nn.Module, inputs: tuple, bf16: bool) -> list[dict]:
    """Eager vs compiled core: step time, agreement, one-off compile CPU time."""
    compiled = copy.deepcopy(model)  # before any step (see zoo_rows)
    compiled.compile_core()
    eager = train_step(model, inputs, bf16)
    eager_ms = cpu_ms(eager, COMPILE_REPS)
    expected = eager()
    step = train_step(compiled, inputs, bf16)
    start = time.process_time()
    got = step()
    compile_s = time.process_time() - start
    compiled_ms = cpu_ms(step, COMPILE_REPS)
    diff = float((got.float() - expected.float()).abs().max() / expected.float().abs().max())
    tolerance = 2e-2 if bf16 else 1e-4
    return [
        {"name": f"{label} eager fwd+bwd", "value": eager_ms, "unit": "CPU ms", "target": "-",
         "ok": None},
        {"name": f"{label} --compile fwd+bwd", "value": compiled_ms, "unit": "CPU ms",
         "target": "< eager", "ok": compiled_ms < eager_ms},
        {"name": f"{label} --compile one-off compile", "value": compile_s, "unit": "CPU s",
         "target": "-", "ok": None},
        {"name": f"{label} --compile max rel. output diff", "value": diff, "unit": "ratio",
         "target": f"<= {tolerance:g}", "ok": diff <= tolerance},
    ]  # fmt: skip


def compile_benchmarks() -> list[dict[str, Any]]:
    from benchmarks.bench_quality import cpu_precision
    from trainer.configs.model_schema import load_model_config
    from trainer.models import build_model

    rows = []
    torch.manual_seed(0)
    sessions = sessions_for(10, 24, 8, units=(24, 24))
    model = build_model(load_model_config("res_small"), sessions).train()
    stim = torch.randn(64, 1, 10, 24, 24, generator=torch.Generator().manual_seed(0))
    bf16 = cpu_precision() == "bf16-mixed"
    label = f"res_small (quality size, batch 64, {'bf16' if bf16 else 'fp32'})"
    rows += _guarded(label, lambda: compile_rows(label, model, (stim, 0, None, None), bf16))
    path = CONFIGS / "learned_resnet_none_none_gaussian.yaml"
    config = load_model_config(path)
    lags, size = input_size(config, path.stem)
    torch.manual_seed(0)
    model = build_model(config, sessions_for(lags, size, BEHAVIOUR)).train()
    stim = torch.randn(BATCH, 1, lags, size, size, generator=torch.Generator().manual_seed(0))
    label = f"{path.stem} (fp32, batch {BATCH})"
    rows += _guarded(label, lambda: compile_rows(label, model, (stim, 0, None, None), False))
    return rows


def _guarded(label: str, measure: Callable[[], list[dict]]) -> list[dict]:
    """A compile failure is a result (a failed row), not a crash that loses the zoo rows."""
    try:
        return measure()
    except Exception as error:  # any compiler error is reported as such
        first = (str(error).splitlines() or [type(error).__name__])[0][:120]
        return [{"name": f"{label} --compile", "value": None, "unit": "-",
                 "target": f"runs ({type(error).__name__}: {first})", "ok": False}]  # fmt: skip


def run() -> list[dict[str, Any]]:
    torch.set_num_threads(1)
    return zoo_rows() + compile_benchmarks()


if __name__ == "__main__":
    for row in run():
        print(row)
