"""Trainer runtime costs, each measured side by side in one run.

1. Lightning overhead: median step time of our ``pl.Trainer`` (with the runtime's per-step
   callbacks: heartbeat, preemption check, LR monitor) vs a raw PyTorch
   forward+backward+AdamW loop over the *same* model and the *same* in-memory batches.
   Raw is measured before and after the trainer and averaged (drifting machine load).
2. Data-loading share: with the real data module (``num_workers=0``, the CLI default),
   the time between the end of one training step and the start of the next (the batch
   fetch plus loop bookkeeping: an upper bound) over the whole step cycle.
3. Scaling on the CPU: 2 processes x 1 thread (DDP over gloo, launched like a two-pod
   PyTorchJob) vs 1 process x 2 threads, same global batch, samples/s of the best
   epoch after the first.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

MODEL = "res_small"
DATASET = "synthetic_mixed"
DATA_ROOT = Path("data")
BATCH = 64
STEPS = 30
WARMUP = 5
ROUNDS = 3
DDP_STEPS, DDP_EPOCHS = 25, 4


def _settings(steps: int) -> Any:
    from trainer.cli import parse_args

    argv = ["train", "--model_config", MODEL, "--dataset_configs_path", DATASET]
    argv += ["--data_root", str(DATA_ROOT), "--batch_size", str(BATCH)]
    argv += ["--steps_per_epoch", str(steps), "--max_epochs", "1", "--resume", "never"]
    return parse_args(argv)


def _datamodule_and_model(args: Any) -> tuple[Any, Any]:
    from trainer import run
    from trainer.models.config import load_model_config

    config = run._dataset_config(args)
    datamodule = run._datamodule(args, config)
    datamodule.prepare_data()
    datamodule.setup("fit")
    model = run._model(args, load_model_config(MODEL), datamodule.sessions_info, config)
    return datamodule, model


class StepClock(pl.Callback):
    """Timestamps of every batch start and end (steady-state steps only are used)."""

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.ends: list[float] = []

    def on_train_batch_start(self, *_: Any) -> None:
        self.starts.append(time.perf_counter())

    def on_train_batch_end(self, *_: Any) -> None:
        self.ends.append(time.perf_counter())


def _runtime_trainer(args: Any, run_dir: Path, clock: StepClock, steps: int) -> pl.Trainer:
    """Our trainer as ``trainer.run`` builds it, minus epoch-end checkpointing/validation."""
    from trainer import run
    from trainer.callbacks.checkpointing import MidEpochCheckpoint
    from trainer.callbacks.heartbeat import EpochHeartbeat
    from trainer.contract import distributed
    from trainer.contract.preemption import SigtermFlag

    layout = distributed.distributed_layout({}, "cpu")
    kwargs = run.trainer_arguments(args, layout, "cpu")
    kwargs.update(limit_val_batches=0, num_sanity_val_steps=0, limit_train_batches=steps)
    kwargs.update(default_root_dir=str(run_dir), enable_checkpointing=False)
    callbacks = [
        EpochHeartbeat(stream=sys.stderr),
        MidEpochCheckpoint(SigtermFlag(), run_dir / "last.ckpt"),
        pl.callbacks.LearningRateMonitor(),
        clock,
    ]
    logger = pl.loggers.CSVLogger(run_dir, name="", version="")
    return pl.Trainer(**kwargs, callbacks=callbacks, logger=logger)


def _raw_step_times(model: Any, batches: list, optimizer: torch.optim.Optimizer) -> list[float]:
    from trainer.models.objective import masked_poisson_nll

    net = model.model
    net.train()
    times = []
    for batch in batches:
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        losses = []
        for b in batch:
            out = net(b["stim"], b["dataset_idx"], b["behavior"])
            nll, weight = masked_poisson_nll(out, b["robs"], b["dfs"], net.log_rate)
            losses.append(nll / weight.clamp_min(1.0))
        torch.stack(losses).mean().backward()
        optimizer.step()
        times.append(time.perf_counter() - started)
    return times[WARMUP:]


def _steady(clock: StepClock) -> tuple[list[float], list[float]]:
    """Per-step cycle times and inter-step gaps, warmup steps dropped."""
    cycles = [b - a for a, b in zip(clock.starts, clock.starts[1:], strict=False)]
    gaps = [s - e for e, s in zip(clock.ends, clock.starts[1:], strict=False)]
    return cycles[WARMUP:], gaps[WARMUP:]


def _trainer_step_times(args: Any, model: Any, batches: list, tmp: Path) -> float:
    clock = StepClock()
    trainer = _runtime_trainer(args, tmp, clock, len(batches))
    trainer.fit(copy.deepcopy(model), train_dataloaders=DataLoader(batches, batch_size=None))
    return statistics.median(_steady(clock)[0])


def overhead_and_data_share() -> list[dict[str, Any]]:
    torch.set_num_threads(1)
    args = _settings(STEPS)
    datamodule, model = _datamodule_and_model(args)
    loader = datamodule.train_dataloader()
    batches = [datamodule.device_batch(b) for _, b in zip(range(STEPS), loader, strict=False)]
    raw_model = copy.deepcopy(model)
    raw_opt = torch.optim.AdamW(raw_model.model.parameters(), lr=1e-3)
    raw, lightning = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(ROUNDS):  # interleaved; best of rounds filters load spikes
            raw.append(statistics.median(_raw_step_times(raw_model, batches, raw_opt)))
            lightning.append(_trainer_step_times(args, model, batches, Path(tmp)))
        clock = StepClock()
        trainer = _runtime_trainer(args, Path(tmp), clock, STEPS)
        trainer.fit(copy.deepcopy(model), datamodule=datamodule)
        cycles, gaps = _steady(clock)
    ratio = min(lightning) / min(raw)
    share = sum(gaps) / sum(cycles)
    return [
        _row("raw_step_ms", min(raw) * 1e3, "ms", None, None),
        _row("trainer_step_ms", min(lightning) * 1e3, "ms", None, None),
        _row("trainer_vs_raw_step", ratio, "x", "<= 1.10", ratio <= 1.10),
        _row("data_loading_share", share, "fraction", "<= 0.05", share <= 0.05),
    ]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _launch(run_dir: Path, batch: int, threads: int, rank: int | None, port: int) -> Any:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    env.update(OMP_NUM_THREADS=str(threads), WANDB_MODE="disabled")
    if rank is not None:
        env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank))
    argv = ["--model_config", MODEL, "--dataset_configs_path", DATASET, "--resume", "never"]
    argv += ["--data_root", str(DATA_ROOT.resolve()), "--run_dir", str(run_dir)]
    argv += ["--batch_size", str(batch), "--steps_per_epoch", str(DDP_STEPS)]
    argv += ["--max_epochs", str(DDP_EPOCHS)]
    argv += ["--limit_val_batches", "2"]
    return subprocess.Popen(
        [sys.executable, "-m", "trainer", *argv], env=env, stdout=subprocess.DEVNULL
    )


def _best_epoch_throughput(run_dir: Path) -> float:
    """Samples/s of the fastest epoch after the first (warm-up), best of epochs vs load."""
    history = json.loads((run_dir / "history.json").read_text())
    return max(float(record["samples_per_s"]) for record in history[1:])


def ddp_vs_threads() -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        single_dir, ddp_dir = Path(tmp, "single"), Path(tmp, "ddp")
        if _launch(single_dir, 2 * BATCH, 2, None, 0).wait() != 0:
            raise RuntimeError("single-process benchmark run failed")
        port = _free_port()
        gang = [_launch(ddp_dir, BATCH, 1, rank, port) for rank in (0, 1)]
        if [p.wait() for p in gang] != [0, 0]:
            raise RuntimeError("two-process benchmark run failed")
        single, ddp = _best_epoch_throughput(single_dir), _best_epoch_throughput(ddp_dir)
    ratio = ddp / single
    return [
        _row("1proc_x_2threads_samples_per_s", single, "samples/s", None, None),
        _row("2proc_x_1thread_ddp_samples_per_s", ddp, "samples/s", None, None),
        _row("ddp_2x1_vs_threads_1x2", ratio, "x", ">= 0.9", ratio >= 0.9),
    ]


def _row(name: str, value: float, unit: str, target: str | None, ok: bool | None) -> dict:
    return {"name": name, "value": round(value, 4), "unit": unit, "target": target, "ok": ok}


def run() -> list[dict[str, Any]]:
    """All three measurements (about two minutes on an idle 2-core machine)."""
    return overhead_and_data_share() + ddp_vs_threads()
