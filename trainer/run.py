"""Assemble and run one training job: data module + model + ``pl.Trainer`` + reporting.

Pure helpers decide *what* to run (resume point, trainer arguments, callbacks); ``train``
is the shell that builds the objects, calls ``fit`` and has rank 0 write the results.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping, LearningRateMonitor
from pytorch_lightning.loggers import CSVLogger

from trainer.callbacks.checkpointing import (
    LAST_CKPT,
    MONITOR,
    MidEpochCheckpoint,
    StepSeededRandomness,
    model_checkpoint,
)
from trainer.callbacks.divergence import DivergenceGuard
from trainer.callbacks.heartbeat import EpochHeartbeat
from trainer.callbacks.progress import ProgressReporter
from trainer.callbacks.wandb_logger import wandb_loggers
from trainer.checkpoints import (
    AtomicCheckpointIO,
    check_resume_compatible,
    remove_stale_temporaries,
    resolve_resume,
)
from trainer.contract import distributed
from trainer.contract.errors import ConfigError, storage_error
from trainer.contract.preemption import SigtermFlag
from trainer.contract.result import (
    build_result,
    clean_history,
    config_label,
    emit_line,
    result_line,
    run_identity,
    write_json_atomic,
    write_result_record,
)

WEIGHTS_LINE_PREFIX = "COREJOB_WEIGHTS "


def checkpoint_dir_of(args: argparse.Namespace) -> Path:
    return Path(args.checkpoint_dir) if args.checkpoint_dir else Path(args.run_dir) / "checkpoints"


def default_precision(accelerator: str) -> str:
    return "bf16-mixed" if accelerator == "gpu" else "32-true"


def build_callbacks(
    args: argparse.Namespace,
    checkpoint_dir: Path,
    sigterm: SigtermFlag,
    started: float | None = None,
    monitor: str = MONITOR,
    checkpoint_tag: str = "bps",
) -> tuple[list[pl.Callback], EpochHeartbeat]:
    """Heartbeat/history, progress lines, preemption, top-k + last checkpoints, LR monitor,
    early stopping, then what the flags ask for: curriculum, fine-tuning, time budget (none
    by default). ``monitor``: the family's validation metric (higher is better) that picks
    the best checkpoints, stops early and paces adaptive fine-tuning."""
    heartbeat = EpochHeartbeat(attempt_started=started, monitor=monitor)
    validates = args.limit_val_batches != 0
    progress_every_s = getattr(args, "progress_every_seconds", 10.0)
    progress = (
        [ProgressReporter(progress_every_s, heartbeat, monitor=monitor)]
        if progress_every_s > 0
        else []
    )
    callbacks: list[pl.Callback] = [
        heartbeat,
        *progress,
        DivergenceGuard(),
        StepSeededRandomness(args.seed),
        MidEpochCheckpoint(sigterm, checkpoint_dir / LAST_CKPT, args.checkpoint_every_minutes),
        model_checkpoint(checkpoint_dir, args.save_top_k, validates, monitor, checkpoint_tag),
        LearningRateMonitor(logging_interval="epoch"),
    ]
    if args.early_stopping_patience and args.limit_val_batches != 0:
        callbacks.append(
            EarlyStopping(
                monitor=monitor,
                mode="max",
                patience=args.early_stopping_patience,
                min_delta=args.early_stopping_min_delta,
            )
        )
    return callbacks + feature_callbacks(args, monitor), heartbeat


def feature_callbacks(args: argparse.Namespace, monitor: str = MONITOR) -> list[pl.Callback]:
    """Curriculum, fine-tuning and time-budget callbacks, when their flags are set."""
    from trainer.callbacks.curriculum import CurriculumCallback
    from trainer.callbacks.finetune import FinetuneCallback, settings_from_args
    from trainer.callbacks.time_budget import TimeBudgetCallback

    callbacks: list[pl.Callback] = []
    if getattr(args, "enable_curriculum", False):
        callbacks.append(CurriculumCallback())
    settings = settings_from_args(args, monitor)
    if settings.strategy != "none":
        callbacks.append(FinetuneCallback(settings))
    if getattr(args, "time_budget_minutes", None):
        clock = getattr(args, "time_budget_clock", "wall")
        callbacks.append(TimeBudgetCallback(args.time_budget_minutes, clock=clock))
    return callbacks


def load_pretrained(model: Any, args: argparse.Namespace) -> None:
    """``--pretrained_checkpoint``: every rank reads the same file (no broadcast needed)."""
    path, heads = getattr(args, "pretrained_checkpoint", None), getattr(args, "pretrained_heads", 0)
    if heads and not path:
        raise ConfigError("--pretrained_heads", "set", "needs --pretrained_checkpoint")
    if path:
        from trainer.models.pretrained import load_pretrained_model

        for line in load_pretrained_model(model, path, getattr(args, "trust_checkpoint", 0), heads):
            print(line, flush=True)


def trainer_arguments(
    args: argparse.Namespace, layout: distributed.Layout, accelerator: str
) -> dict[str, Any]:
    """Everything ``pl.Trainer`` gets except callbacks and logger (pure)."""
    steps = args.steps_per_epoch
    kwargs: dict[str, Any] = {
        "accelerator": accelerator,
        "precision": args.precision or default_precision(accelerator),
        "max_epochs": args.max_epochs,
        "gradient_clip_val": args.gradient_clip_val,
        "accumulate_grad_batches": args.accumulate_grad_batches,
        "default_root_dir": args.run_dir,
        # The data module's samplers shard by rank themselves (exact validation statistics).
        "use_distributed_sampler": False,
        "enable_progress_bar": sys.stderr.isatty() and layout.is_rank_zero,
        # ~10+ points per epoch in metrics.csv, so per-step curves exist after one epoch
        "log_every_n_steps": max(1, min(50, (steps or 100) // 10)),
        **distributed.trainer_kwargs(layout, args.ddp_timeout_s),
    }
    if args.limit_val_batches is not None:
        limit = args.limit_val_batches
        kwargs["limit_val_batches"] = int(limit) if limit > 1 else limit
    return kwargs


def weights_digest(module: torch.nn.Module) -> str:
    """SHA-256 over the state dict (names and bytes): equal on all ranks iff weights are."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        # reshape: 0-dim buffers (BatchNorm's num_batches_tracked) cannot be viewed as bytes
        digest.update(tensor.detach().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def ensure_data_root(data_root: str | None) -> None:
    """A usable ``--data_root`` (created when missing: synthetic sessions are generated
    there), or one line naming the flag: a bad path is a usage error, not a bug."""
    if data_root is None:
        return
    path = Path(data_root)
    if path.exists() and not path.is_dir():
        raise ConfigError("--data_root", data_root, "is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        mapped = storage_error(error, path)  # full or read-only volumes keep their codes
        if mapped is not None:
            raise mapped from None
        raise ConfigError(
            "--data_root", data_root, f"cannot be created ({error.strerror})"
        ) from None
    if not path.is_dir():
        raise ConfigError("--data_root", data_root, "is not a directory")


def _dataset_config(args: argparse.Namespace) -> Any:
    from trainer.data.config import load_dataset_config

    ensure_data_root(args.data_root)
    return load_dataset_config(
        args.dataset_configs_path, data_root=args.data_root, max_datasets=args.max_datasets
    )


def _datamodule(args: argparse.Namespace, config: Any) -> Any:
    from trainer.data import MultiDatasetDM

    return MultiDatasetDM(
        config,
        batch_size=args.batch_size,
        dset_dtype=args.dset_dtype,
        num_workers=args.num_workers,
        seed=args.seed,
        steps_per_epoch=args.steps_per_epoch,
        data_on_device=args.data_on_device,
        data_on_device_share=args.data_on_device_share,
        derived_dir=getattr(args, "derived_dir", None),
        curriculum_warmup_steps=args.curriculum_warmup_steps
        if getattr(args, "enable_curriculum", False)
        else None,
    )


def _model(
    args: argparse.Namespace, model_config: dict, sessions: list[Any], dataset_config: Any
) -> Any:
    from trainer.models.lightning_module import MultiDatasetModel
    from trainer.optim.optimizer import OptimSettings

    optim = OptimSettings(
        learning_rate=args.learning_rate,
        core_lr_scale=args.core_lr_scale,
        weight_decay=args.weight_decay,
        lr_scheduler=args.lr_scheduler,
        warmup_epochs=args.warmup_epochs,
        restart_period=args.restart_period,
        max_epochs=args.max_epochs,
        steps_per_epoch=args.steps_per_epoch,
    )
    model = MultiDatasetModel(model_config, sessions, optim, dataset_config.to_dict())
    if args.compile:
        model.compile()
    return model


class V1Family:
    """The V1 family (spike counts of visual cortex) as ``train`` drives it; the video
    family is ``trainer.video.family.VideoFamily``. A family supplies its configs, data
    module and model, its headline metric and its result object; everything else
    (ranks, resume, callbacks, checkpoints, loggers, the result line) is shared here."""

    name = "v1"
    monitor = MONITOR
    checkpoint_tag = "bps"

    def prepare_args(self, args: argparse.Namespace) -> argparse.Namespace:
        from trainer.video.options import video_flags_set

        flags = video_flags_set(args)
        if flags:
            raise ConfigError(
                flags[0],
                "set",
                f"is a video-family flag; --model_config {args.model_config}"
                " is a V1 model (video models: r3d_small, r3d_18)",
            )
        return args

    def load_configs(self, args: argparse.Namespace) -> tuple[dict, Any]:
        from trainer.models.config import load_model_config

        return load_model_config(args.model_config), _dataset_config(args)

    def build(self, args, model_config: dict, dataset_config: Any, layout: Any):
        datamodule = _datamodule(args, dataset_config)
        datamodule.prepare_data()
        datamodule.setup("fit")
        model = _model(args, model_config, datamodule.sessions_info, dataset_config)
        load_pretrained(model, args)
        return datamodule, model

    def result(self, history, run_facts: dict, datamodule: Any) -> dict[str, Any]:
        from trainer.models.bits_per_spike import oracle_bps

        sessions = [info.name for info in datamodule.sessions_info]
        return build_result(
            history=history, sessions=sessions, run=run_facts, oracle=oracle_bps(datamodule)
        )

    def generate(self, args: argparse.Namespace) -> str:
        from trainer.data.sessions import derived_session_folders

        config = _dataset_config(args)
        derived_session_folders(config, args.dset_dtype, args.derived_dir, verify=True)
        return f"{len(config.sessions)} sessions ready (raw and derived) under {config.data_root}"


def family_of_run(args: argparse.Namespace) -> Any:
    """The family object of a run (``family:`` in its configs; ``trainer.configs.families``)."""
    from trainer.configs.families import VIDEO, run_family

    if run_family(args.model_config, args.dataset_configs_path) == VIDEO:
        from trainer.video.family import VideoFamily

        return VideoFamily()
    return V1Family()


def generate(args: argparse.Namespace) -> None:
    """Write every missing synthetic session (V1) or clip cache (video) of a dataset config
    (``corejob-train generate``).

    An explicit offline step, so for V1 it also compares every existing session's
    checksums and regenerates damaged ones (training itself only checks headers and sizes
    at start).
    """
    from trainer.configs import DATASETS
    from trainer.configs.families import VIDEO, config_family

    ensure_data_root(args.data_root)
    if config_family(DATASETS, args.dataset_configs_path) == VIDEO:
        from trainer.video.family import VideoFamily

        print(VideoFamily().generate(args), flush=True)
        return
    print(V1Family().generate(args), flush=True)


def train(args: argparse.Namespace, sigterm: SigtermFlag) -> dict[str, Any] | None:
    """Run one training job; rank 0 returns (and prints) the result object."""
    started = time.perf_counter()
    family = family_of_run(args)
    args = family.prepare_args(args)
    # Both configs first: a typo must fail in a second, before any data is generated.
    model_config, dataset_config = family.load_configs(args)
    ensure_data_root(args.data_root)
    accelerator = distributed.resolve_accelerator(args.accelerator)
    layout = distributed.current_layout(accelerator)
    distributed.configure_process(layout)
    run_dir, checkpoint_dir = Path(args.run_dir), checkpoint_dir_of(args)
    if layout.rank == 0:
        for path in remove_stale_temporaries(checkpoint_dir):
            print(f"removed {path}: a checkpoint save an earlier attempt did not finish")
    resume_from = resolve_resume(
        args.resume, args.ckpt_path, checkpoint_dir, args.damaged_checkpoints
    )
    if resume_from:
        check_resume_compatible(resume_from, model_config)
    if layout.is_rank_zero:
        start = f"resuming from {resume_from}" if resume_from else "starting fresh"
        print(f"corejob-train: run dir {run_dir}: {start}", flush=True)
    pl.seed_everything(args.seed, workers=True, verbose=False)

    datamodule, model = family.build(args, model_config, dataset_config, layout)

    callbacks, heartbeat = build_callbacks(
        args, checkpoint_dir, sigterm, started, family.monitor, family.checkpoint_tag
    )
    loggers = [CSVLogger(save_dir=run_dir, name="", version="")]
    loggers += wandb_loggers(args, run_dir, layout.rank)  # rank 0 unless disabled
    trainer = pl.Trainer(
        **trainer_arguments(args, layout, accelerator),
        callbacks=callbacks,
        logger=loggers,
        plugins=[AtomicCheckpointIO()],
    )
    trainer.fit(model, datamodule=datamodule, ckpt_path=resume_from)

    return _report(args, trainer, model, datamodule, heartbeat, resume_from, family)


def training_limits(args: argparse.Namespace, trainer: pl.Trainer) -> dict[str, Any]:
    """What bounded the run: results trained under other limits are not comparable
    (``corejob results`` flags them). ``cores``: CPU threads over all processes on the
    CPU, devices on an accelerator."""
    budget = getattr(args, "time_budget_minutes", None)
    on_cpu = trainer.accelerator.__class__.__name__ == "CPUAccelerator"
    return {
        "time_budget_minutes": budget,
        "time_budget_clock": getattr(args, "time_budget_clock", "wall") if budget else None,
        "max_epochs": args.max_epochs,
        "steps_per_epoch": args.steps_per_epoch,
        "accelerator": "cpu" if on_cpu else "gpu",
        "cores": trainer.world_size * (torch.get_num_threads() if on_cpu else 1),
    }


def _report(
    args: argparse.Namespace,
    trainer: pl.Trainer,
    model: torch.nn.Module,
    datamodule: Any,
    heartbeat: EpochHeartbeat,
    resume_from: Path | None,
    family: Any = None,
) -> dict[str, Any] | None:
    """Every rank prints its weights digest; rank 0 writes metrics and the result line."""
    run_dir = Path(args.run_dir)
    digest = weights_digest(model)
    emit_line(f"{WEIGHTS_LINE_PREFIX}rank={trainer.global_rank} sha256={digest}")
    if not trainer.is_global_zero:
        return None
    run_facts = {
        "model": config_label(args.model_config),
        "dataset": config_label(args.dataset_configs_path),
        "experiment_name": args.experiment_name,
        "global_step": trainer.global_step,
        "world_size": trainer.world_size,
        "wall_time_s": round(heartbeat.wall_time_s(), 3),
        "attempts": heartbeat.attempts,
        "train_time_s": round(heartbeat.train_time_s, 3),
        "samples_per_s": heartbeat.train_samples / heartbeat.train_time_s
        if heartbeat.train_time_s
        else None,
        "resumed_from": str(resume_from) if resume_from else None,
        "best_checkpoint": trainer.checkpoint_callback.best_model_path or None,
        "weights_sha256": digest,
        "run_dir": str(run_dir),
        "training_limits": training_limits(args, trainer),
    }
    result = (family or V1Family()).result(heartbeat.history, run_facts, datamodule)
    write_json_atomic(run_dir / "history.json", clean_history(heartbeat.history))
    write_json_atomic(run_dir / "metrics.json", result)
    job = run_identity(os.environ, run_facts, "Succeeded", "Trained", "", run_facts["wall_time_s"])
    write_result_record(run_dir, job, result)
    emit_line(result_line(result))
    return result
