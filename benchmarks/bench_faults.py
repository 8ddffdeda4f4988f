"""What a fault costs a run: steps lost, extra wall time, final quality vs a clean run.

The same ``res_small`` run on ``synthetic_tiny`` (one thread, fixed seed) is trained once
uninterrupted and once per fault, restarted with the same command after the fault (what
the operator does under ``restartPolicy: ExitCode``); every run is measured here, side by
side, so the ratios hold on a noisy machine.

- ``preemption``: SIGTERM inside the second epoch: ``last.ckpt`` is saved at that step,
  nothing is lost, and the resumed run is bit-identical to the clean one.
- ``node loss``: SIGKILL inside the second epoch with ``--checkpoint_every_minutes`` at a
  few seconds: the work since the last interval save is lost (steps lost = the step the
  kill interrupted minus the step of the checkpoint the restart resumed from; the kill is
  sent the moment the first epoch's heartbeat line appears, i.e. at about step ``STEPS``,
  while that epoch's checkpoint is being written).

Steps lost must stay within the interval's worth of steps; the final metric within noise.
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from tests.support.trainer_launch import TINY, base_env, run_trainer, start

STEPS, EPOCHS = 30, 3
INTERVAL_MINUTES = 0.01  # 0.6 s: several interval saves per epoch on this machine


def _args(data: Path, run: str, *extra: str) -> list[str]:
    return [
        *TINY, "--run_dir", run, "--data_root", str(data), "--max_epochs", str(EPOCHS),
        "--steps_per_epoch", str(STEPS), "--batch_size", "32", "--seed", "5", *extra,
    ]  # fmt: skip


def _timed_run(args: list[str], work: Path) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    proc = start(args, base_env(OMP_NUM_THREADS="1"), work)
    if proc.wait(timeout=900) != 0:
        raise RuntimeError(f"run failed:\n{proc.output[-2000:]}")
    return time.perf_counter() - started, proc.result()


def _faulted(args: list[str], work: Path, signum: int) -> tuple[float, int, int]:
    """Wall time of the faulted attempt, the step it was stopped at, the step resumed from."""
    started = time.perf_counter()
    proc = start(args, base_env(OMP_NUM_THREADS="1"), work)
    proc.wait_for_line("COREJOB_EPOCH", count=1, timeout=600)  # epoch 0 done: step == STEPS
    proc.signal(signum)
    proc.wait(timeout=300)
    elapsed = time.perf_counter() - started
    last = work / args[args.index("--run_dir") + 1] / "checkpoints/last.ckpt"
    if not last.exists():  # killed before its first save: the restart starts from step 0
        return elapsed, STEPS, 0
    return elapsed, STEPS, int(torch.load(last, weights_only=False, mmap=True)["global_step"])


def _row(name: str, value: float, unit: str, target: str, ok: bool | None) -> dict[str, Any]:
    return {"name": name, "value": round(value, 4), "unit": unit, "target": target, "ok": ok}


def _fault_rows(
    fault: str, signum: int, extra: list[str], data: Path, work: Path, clean: tuple
) -> list[dict[str, Any]]:
    clean_wall, clean_result = clean
    args = _args(data, fault.replace(" ", "_"), *extra)
    first_wall, stopped_at, resumed_from = _faulted(args, work, signum)
    second_wall, result = _timed_run(args, work)
    lost = max(0, stopped_at - resumed_from)
    ratio = result["final_val_bps_overall"] / clean_result["final_val_bps_overall"]
    # The bound: what one interval (plus a second of slack for the save itself) trains.
    steps_per_s = clean_result["samples_per_s"] / 32
    interval_s = INTERVAL_MINUTES * 60 if extra else 0.0
    bound = int(steps_per_s * (interval_s + 1.0)) + 1
    return [
        _row(f"{fault}: steps lost", lost, "steps", f"<= {bound}", lost <= bound),
        _row(f"{fault}: extra wall time", first_wall + second_wall - clean_wall, "s", "-", None),
        _row(f"{fault}: final val bps / clean", ratio, "x", "0.9..1.1", 0.9 <= ratio <= 1.1),
        _row(f"{fault}: attempts", result["attempts"], "", "2", result["attempts"] == 2),
    ]  # fmt: skip


def run() -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="corejob-bench-faults-") as scratch:
        work = Path(scratch)
        data = work / "data"
        if run_trainer(["generate", "--dataset_configs_path", "synthetic_tiny",
                        "--data_root", str(data)]) != 0:  # fmt: skip
            raise RuntimeError("could not generate synthetic_tiny")
        os.environ.setdefault("WANDB_MODE", "disabled")
        clean = _timed_run(_args(data, "clean"), work)
        rows = [_row("clean run wall time", clean[0], "s", "-", None)]
        rows += _fault_rows("preemption", signal.SIGTERM, [], data, work, clean)
        interval = ["--checkpoint_every_minutes", str(INTERVAL_MINUTES)]
        rows += _fault_rows("node loss", signal.SIGKILL, interval, data, work, clean)
    return rows
