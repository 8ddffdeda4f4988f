"""``make gpu-check``: what one GPU does with our trainer at realistic scale (< 8 minutes).

For ``res_small`` and two VisionCore-style configs (recurrent cores; the lead swaps in
VisionCore's own later) at batch 256, bf16-mixed, on ``synthetic_realistic``:
steps/s and samples/s with host-built windows (``--data_on_device never``) vs
device-resident windows (``always``), the GPU memory peak, and the resident case again
with the vision core ``torch.compile``d. Then a DDP smoke run over NCCL with the pod's
environment (``MASTER_ADDR``/``MASTER_PORT``/``WORLD_SIZE``/``RANK`` read by Lightning's
Kubeflow environment, the backend from ``trainer.contract.distributed``) in a child
process. Writes ``benchmarks/results/gpu-<date>.json`` and ``.md``.

``--dry-run`` runs the same code on the CPU in seconds (``synthetic_tiny``, batch 16, a
few steps, the ``eager`` compile backend, gloo), so the script is not first run on a GPU.
Each case is timed inside one Lightning ``fit``: the first ``warmup`` steps (compilation,
cuDNN autotuning, workers starting) are excluded. A case that fails is recorded with its
error and the check goes on; cases left when the time budget is spent are marked skipped.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

MODELS = ("res_small", "res_small_gru", "res_small_concat_gru")
RESULTS_DIR = Path("benchmarks/results")
DDP_LINE = "GPU_CHECK_DDP "


@dataclasses.dataclass(frozen=True)
class Settings:
    accelerator: str
    dataset: str
    max_datasets: int | None
    batch: int
    precision: str
    warmup: int
    steps: int
    compile_backend: str
    num_workers: int
    budget_s: float
    data_root: str


FULL = Settings(
    "gpu", "synthetic_realistic", 8, 256, "bf16-mixed", 8, 40, "inductor", 8, 400, "data"
)
DRY = Settings("cpu", "synthetic_tiny", None, 16, "bf16-mixed", 1, 2, "eager", 0, 300, "data")


@dataclasses.dataclass(frozen=True)
class Case:
    model: str
    placement: str  # --data_on_device: never = host-built windows, always = resident
    compiled: bool

    @property
    def label(self) -> str:
        data = "host windows" if self.placement == "never" else "device-resident"
        return f"{self.model} / {data}{' / compiled' if self.compiled else ''}"


def cases(models: tuple[str, ...] = MODELS) -> list[Case]:
    """Uncompiled cases first: compilation is the slowest, so a tight budget drops it."""
    plain = [Case(m, p, False) for m in models for p in ("never", "always")]
    return plain + [Case(m, "always", True) for m in models]


def device_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cuda_available": torch.cuda.is_available(),
        "cpus": os.cpu_count(),
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info |= {
            "device": props.name,
            "memory_gib": round(props.total_memory / 1024**3, 1),
            "capability": f"{props.major}.{props.minor}",
            "multiprocessors": props.multi_processor_count,
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
            "nccl": ".".join(map(str, torch.cuda.nccl.version())),
            "bf16": torch.cuda.is_bf16_supported(),
        }
    return info


def train_argv(settings: Settings, model: str, placement: str) -> list[str]:
    argv = ["train", "--model_config", model, "--dataset_configs_path", settings.dataset]
    argv += ["--data_root", settings.data_root, "--batch_size", str(settings.batch)]
    argv += ["--precision", settings.precision, "--accelerator", settings.accelerator]
    argv += ["--data_on_device", placement, "--num_workers", str(settings.num_workers)]
    argv += ["--steps_per_epoch", str(settings.warmup + settings.steps), "--max_epochs", "1"]
    argv += ["--resume", "never"]
    if settings.max_datasets:
        argv += ["--max_datasets", str(settings.max_datasets)]
    return argv


class StepClock:
    """Batch-start timestamps, as a Lightning callback (built lazily: imports Lightning)."""

    @staticmethod
    def make() -> Any:
        import pytorch_lightning as pl

        class _Clock(pl.Callback):
            def __init__(self) -> None:
                self.starts: list[float] = []

            def on_train_batch_start(self, *_: Any) -> None:
                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                self.starts.append(time.perf_counter())

            def on_train_end(self, *_: Any) -> None:
                self.on_train_batch_start()

        return _Clock()


def build(settings: Settings, model_name: str, placement: str) -> tuple[Any, Any]:
    """The data module and model exactly as ``corejob-train train`` builds them."""
    from trainer import run
    from trainer.cli import parse_args
    from trainer.models.config import load_model_config

    args = parse_args(train_argv(settings, model_name, placement))
    config = run._dataset_config(args)
    datamodule = run._datamodule(args, config)
    datamodule.prepare_data()
    datamodule.setup("fit")
    model = run._model(args, load_model_config(model_name), datamodule.sessions_info, config)
    return datamodule, model


def timed_trainer(settings: Settings, clock: Any, **placement: Any) -> Any:
    """One Trainer for every timed run: training steps only, nothing else on the clock
    (no validation, logging, checkpoints or progress bar); ``placement`` adds DDP."""
    import pytorch_lightning as pl

    return pl.Trainer(
        accelerator=settings.accelerator,
        devices=1,
        precision=settings.precision,
        max_steps=settings.warmup + settings.steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        callbacks=[clock],
        **placement,
    )


def run_case(case: Case, settings: Settings) -> dict[str, Any]:

    datamodule, model = build(settings, case.model, case.placement)
    if case.compiled:  # the core does the work; readouts differ per session
        model.model.core.compile(backend=settings.compile_backend)
    clock = StepClock.make()
    trainer = timed_trainer(settings, clock)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    trainer.fit(model, datamodule=datamodule)
    timed = clock.starts[settings.warmup :]
    steps_per_s = (len(timed) - 1) / (timed[-1] - timed[0])
    return {
        "model": case.model,
        "data": "host" if case.placement == "never" else "resident",
        "placement": datamodule.placement.reason,
        "compiled": case.compiled,
        "steps_per_s": round(steps_per_s, 3),
        "samples_per_s": round(steps_per_s * settings.batch, 1),
        "warmup_s": round(clock.starts[settings.warmup] - started, 2),
        "peak_gib": round(torch.cuda.max_memory_allocated() / 1024**3, 2)
        if torch.cuda.is_available()
        else None,
        "status": "ok",
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ddp_smoke(settings: Settings) -> dict[str, Any]:
    """A child process with a pod's environment trains a few steps under DDP."""
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "TORCHELASTIC_RUN_ID")}
    env |= {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())}
    env |= {"WORLD_SIZE": "1", "RANK": "0", "WANDB_MODE": "disabled"}
    child = [sys.executable, "-m", "benchmarks.gpu_check", "--ddp-child"]
    child += ["--settings", json.dumps(dataclasses.asdict(settings))]
    done = subprocess.run(child, env=env, capture_output=True, text=True, timeout=300)
    for line in done.stdout.splitlines():
        if line.startswith(DDP_LINE):
            return json.loads(line.removeprefix(DDP_LINE))
    tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
    return {"status": f"failed (exit {done.returncode}): {' | '.join(tail)}"}


def ddp_child(settings: Settings) -> None:
    """In the child: the contract's backend, Lightning's Kubeflow environment, DDP."""
    from pytorch_lightning.plugins.environments import KubeflowEnvironment
    from pytorch_lightning.strategies import DDPStrategy

    from trainer.contract import distributed

    layout = distributed.current_layout(settings.accelerator)
    backend = distributed.backend_for(settings.accelerator)
    datamodule, model = build(settings, MODELS[0], "auto")
    strategy = DDPStrategy(
        cluster_environment=KubeflowEnvironment(),
        process_group_backend=backend,
        find_unused_parameters=True,
    )
    clock = StepClock.make()
    trainer = timed_trainer(settings, clock, num_nodes=1, strategy=strategy)
    trainer.fit(model, datamodule=datamodule)
    timed = clock.starts[settings.warmup :]
    result = {
        "status": "ok",
        "contract_layout": layout.kind,
        "backend": torch.distributed.get_backend() if torch.distributed.is_initialized() else None,
        "world_size": trainer.world_size,
        "steps": trainer.global_step,
        "steps_per_s": round((len(timed) - 1) / (timed[-1] - timed[0]), 3),
        "placement": datamodule.placement.reason,
    }
    print(DDP_LINE + json.dumps(result), flush=True)


def markdown(report: dict[str, Any]) -> str:
    info = report["device"]
    lines = [
        f"# gpu-check {report['date']}",
        "",
        f"Device: {info.get('device', 'CPU (dry run)')}, torch {info['torch']},"
        f" CUDA {info.get('cuda', '-')}; dataset {report['settings']['dataset']}"
        f" ({report['settings']['max_datasets'] or 'all'} sessions), batch"
        f" {report['settings']['batch']}, {report['settings']['precision']}.",
        "",
        "| model | data | compiled | steps/s | samples/s | peak GiB | warm-up s | status |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report["cases"]:
        cells = [row.get(k, "-") for k in ("model", "data", "compiled", "steps_per_s")]
        cells += [row.get(k, "-") for k in ("samples_per_s", "peak_gib", "warmup_s", "status")]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    ddp = report["ddp_smoke"]
    lines += ["", f"DDP smoke: {json.dumps(ddp)}", f"Total: {report['total_s']} s", ""]
    return "\n".join(lines)


def run_check(
    settings: Settings, out_dir: Path, models: tuple[str, ...] = MODELS
) -> dict[str, Any]:
    started = time.perf_counter()
    report: dict[str, Any] = {
        "date": datetime.date.today().isoformat(),
        "device": device_info(),
        "settings": dataclasses.asdict(settings),
        "cases": [],
    }
    for case in cases(models):
        if time.perf_counter() - started > settings.budget_s:
            report["cases"].append({**_describe(case), "status": "skipped: time budget spent"})
            continue
        print(f"gpu-check: {case.label}", file=sys.stderr, flush=True)
        try:
            report["cases"].append(run_case(case, settings))
        except Exception as error:  # one broken case must not hide the others
            report["cases"].append({**_describe(case), "status": f"failed: {error!r}"[:300]})
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    report["ddp_smoke"] = ddp_smoke(settings)
    report["total_s"] = round(time.perf_counter() - started, 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"gpu-{report['date']}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    stem.with_suffix(".md").write_text(markdown(report))
    return report


def _describe(case: Case) -> dict[str, Any]:
    data = "host" if case.placement == "never" else "resident"
    return {"model": case.model, "data": data, "compiled": case.compiled}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__)
    parser.add_argument("--dry-run", action="store_true", help="the same code on the CPU, small")
    parser.add_argument("--out_dir", default=str(RESULTS_DIR), help="where the JSON and .md go")
    parser.add_argument("--data_root", default=None, help="where sessions are (generated) ")
    parser.add_argument("--models", default=",".join(MODELS), help="model configs, comma-separated")
    parser.add_argument("--ddp-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--settings", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.ddp_child:
        ddp_child(Settings(**json.loads(args.settings)))
        return 0
    settings = DRY if args.dry_run else FULL
    if args.data_root:
        settings = dataclasses.replace(settings, data_root=args.data_root)
    if not args.dry_run and not torch.cuda.is_available():
        print("gpu-check: no CUDA device here (use --dry-run on a CPU)", file=sys.stderr)
        return 2
    report = run_check(settings, Path(args.out_dir), tuple(args.models.split(",")))
    print(markdown(report))
    failed = [c for c in report["cases"] if c["status"].startswith("failed")]
    return 1 if failed or report["ddp_smoke"].get("status") != "ok" else 0


if __name__ == "__main__":
    raise SystemExit(main())
