"""Wiring of the issue-3 features into a training run: CLI flags, callbacks, loggers.

The runtime (``trainer/cli.py``, ``trainer/run.py``) calls four functions from here, so
that each feature lives in its own module and the runtime stays a short script:

- ``add_extras_arguments(parser)``: curriculum, fine-tuning, time budget, W&B flags;
- ``prepare_model(model, args)``: pretrained core loading (rank-independent, before fit);
- ``extras_callbacks(args)``: curriculum / fine-tuning / time-budget callbacks;
- ``extras_loggers(args, run_dir, global_rank, config)``: the W&B logger on rank 0.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from trainer.wandb_setup import MODES, make_wandb_logger, resolve_settings

# torch and Lightning load lazily: the CLI parses arguments (and installs its SIGTERM
# handler) before any heavy import.


def add_extras_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of the curriculum, fine-tuning, time budget and W&B features."""
    group = parser.add_argument_group("curriculum, fine-tuning, budget, logging")
    group.add_argument(
        "--enable_curriculum",
        action="store_true",
        help="contrast curriculum: high-contrast samples first, uniform after the warmup",
    )
    group.add_argument("--curriculum_warmup_steps", type=int, default=1000)
    group.add_argument(
        "--pretrained_checkpoint", default=None, help="corejob checkpoint whose core to load"
    )
    group.add_argument("--freeze_vision", action="store_true", help="never train the core")
    group.add_argument(
        "--finetune_strategy",
        default=None,
        help="none | fixed (= --freeze_vision) | progressive | adaptive",
    )
    group.add_argument("--unfreeze_start_epoch", type=int, default=1)
    group.add_argument("--unfreeze_every", type=int, default=1, help="epochs per stage")
    group.add_argument("--unfrozen_lr_scale", type=float, default=0.1)
    group.add_argument("--finetune_patience", type=int, default=2, help="adaptive: epochs")
    group.add_argument(
        "--time_budget_minutes",
        type=float,
        default=None,
        help="minutes: measure step and validation costs, stop at the last step that fits",
    )
    group.add_argument(
        "--time_budget_clock",
        choices=("wall", "cpu"),
        default="wall",
        help="cpu: count this process's CPU time (fair on a shared machine)",
    )
    group.add_argument(
        "--wandb",
        choices=MODES,
        default=None,
        help="default: $WANDB_MODE, else online with an API key and offline without",
    )
    group.add_argument("--wandb_entity", default=None)
    group.add_argument("--wandb_tags", nargs="*", default=None)


def finetune_settings(args: argparse.Namespace) -> Any:
    """``FinetuneSettings`` from the flags (``--freeze_vision`` means ``fixed``)."""
    from trainer.finetune import FinetuneSettings

    strategy = getattr(args, "finetune_strategy", None) or (
        "fixed" if getattr(args, "freeze_vision", False) else "none"
    )
    return FinetuneSettings(
        strategy=strategy,
        unfreeze_start_epoch=args.unfreeze_start_epoch,
        unfreeze_every=args.unfreeze_every,
        unfrozen_lr_scale=args.unfrozen_lr_scale,
        patience=args.finetune_patience,
    )


def prepare_model(model: Any, args: argparse.Namespace) -> None:
    """Load the pretrained core (every rank, same file: no broadcast needed)."""
    path = getattr(args, "pretrained_checkpoint", None)
    if path:
        from trainer.finetune import load_pretrained_core

        report = load_pretrained_core(model.model.core, path)
        print(report.summary(path), flush=True)


def extras_callbacks(args: argparse.Namespace) -> list[Any]:
    """The Lightning callbacks the flags ask for (none by default)."""
    from trainer.curriculum import CurriculumCallback
    from trainer.finetune import FinetuneCallback
    from trainer.time_budget import TimeBudgetCallback

    callbacks: list[Any] = []
    if getattr(args, "enable_curriculum", False):
        callbacks.append(CurriculumCallback())
    settings = finetune_settings(args)
    if settings.strategy != "none":
        callbacks.append(FinetuneCallback(settings))
    if getattr(args, "time_budget_minutes", None):
        clock = getattr(args, "time_budget_clock", "wall")
        callbacks.append(TimeBudgetCallback(args.time_budget_minutes, clock=clock))
    return callbacks


def extras_loggers(
    args: argparse.Namespace, run_dir: Path, global_rank: int, config: dict | None = None
) -> list[Any]:
    """``[WandbLogger]`` on rank 0 unless disabled; ``[]`` otherwise."""
    cli = {
        "wandb": getattr(args, "wandb", None),
        "wandb_project": getattr(args, "project_name", None),
        "wandb_entity": getattr(args, "wandb_entity", None),
        "wandb_run_name": getattr(args, "experiment_name", None),
        "wandb_tags": getattr(args, "wandb_tags", None),
        "model": _label(args.model_config),
        "dataset": _label(args.dataset_configs_path),
    }
    settings = resolve_settings(cli, dict(os.environ))
    logger = make_wandb_logger(settings, run_dir, global_rank, config or vars(args))
    return [logger] if logger is not None else []


def _label(name_or_path: str) -> str:
    path = Path(name_or_path)
    return path.stem if path.suffix in (".yaml", ".yml") else name_or_path
