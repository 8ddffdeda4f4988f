"""The video family as ``trainer.run`` drives it: configs → data module + model → result.

``trainer/run.py`` owns everything shared (ranks, resume, callbacks, checkpoints, W&B,
time budget, the result line); a family supplies only what differs: its configs, its data
module and LightningModule, the metric that picks the best checkpoint, and its result
object. This module is that for multi-view, multi-task video classification.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from trainer.configs import DATASETS, MODELS, resolve_config
from trainer.configs.families import read_yaml
from trainer.configs.video_schema import VideoDatasetConfig, VideoModelConfig
from trainer.contract.errors import ConfigError
from trainer.contract.result import build_classification_result
from trainer.video.metrics.confusion import HEADLINE, HEADLINE_LABEL


def load_video_configs(args: argparse.Namespace) -> tuple[dict[str, Any], VideoDatasetConfig]:
    """The model config (validated, as plain data) and the dataset config of a run."""
    model_path = resolve_config(MODELS, args.model_config)
    raw_model = read_yaml(model_path, "--model_config")
    raw_model.setdefault("name", model_path.stem)
    VideoModelConfig.from_dict(raw_model, str(model_path))  # every error before any work
    return raw_model, load_video_dataset(args.dataset_configs_path)


def load_video_dataset(name_or_path: str) -> VideoDatasetConfig:
    data_path = resolve_config(DATASETS, name_or_path)
    raw_data = read_yaml(data_path, "--dataset_configs_path")
    raw_data.setdefault("name", data_path.stem)
    return VideoDatasetConfig.from_dict(raw_data, str(data_path))


def finetune_args(args: argparse.Namespace) -> argparse.Namespace:
    """``--gradual_finetuning`` is the shared progressive strategy with the backbone frozen
    for ``--frozen_epochs`` (then stages open from the head side at the smaller LR)."""
    if not getattr(args, "gradual_finetuning", False):
        return args
    chosen = getattr(args, "finetune_strategy", None)
    if chosen not in (None, "progressive"):
        raise ConfigError(
            "--gradual_finetuning", "on", f"conflicts with --finetune_strategy {chosen}"
        )
    return argparse.Namespace(
        **{
            **vars(args),
            "finetune_strategy": "progressive",
            "unfreeze_start_epoch": args.frozen_epochs,
        }
    )


def config_summary(args: argparse.Namespace, model: dict, dataset: VideoDatasetConfig) -> str:
    """The logged configuration summary (rank 0, once)."""
    backbone = model.get("backbone", {})
    tasks = ", ".join(
        f"{t.name} ({len(t.classes)} classes, imbalance {t.imbalance:g}, noise {t.label_noise:g})"
        for t in dataset.tasks
    )
    aug = "aggressive" if args.aggressive_augmentation else args.augmentation
    lines = [
        f"model       {model['name']}: ResNet3D depth {backbone.get('depth', 'small')},"
        f" channels {backbone.get('channels')}, fusion {model.get('fusion', 'mean')}",
        f"data        {dataset.name}: {dataset.views} views x {dataset.frames} frames x"
        f" {dataset.image_size}px, {dataset.n_train} train / {dataset.n_val} val clips",
        f"tasks       {tasks}",
        f"loss        {args.loss_function}"
        + (f" (gamma {args.focal_gamma:g})" if args.loss_function == "focal" else "")
        + (f", task weights {args.task_weights}" if args.task_weights else ""),
        f"optimizer   AdamW lr {args.learning_rate:g} (backbone x{args.core_lr_scale:g}),"
        f" wd {args.weight_decay:g}, {args.lr_scheduler}, batch {args.batch_size},"
        f" epochs {args.max_epochs}",
        f"finetuning  {args.finetune_strategy or ('fixed' if args.freeze_vision else 'none')}"
        + (
            f" (backbone frozen {args.unfreeze_start_epoch} epochs)"
            if args.gradual_finetuning
            else ""
        ),
        f"augment     {aug}",
    ]
    return "\n".join("[config] " + line for line in lines)


class VideoFamily:
    """What ``trainer.run.train`` needs from a family (see ``trainer.run.V1Family``)."""

    name = "video"
    monitor = HEADLINE
    monitor_label = HEADLINE_LABEL
    checkpoint_tag = "macc"

    def prepare_args(self, args: argparse.Namespace) -> argparse.Namespace:
        return finetune_args(args)

    def load_configs(self, args: argparse.Namespace) -> tuple[dict[str, Any], Any]:
        return load_video_configs(args)

    def build(self, args: argparse.Namespace, model_config: dict, dataset: Any, layout: Any):
        from trainer.optim.optimizer import OptimSettings
        from trainer.video.data.datamodule import VideoDM, augmentation_for
        from trainer.video.data.recommendations import dataset_recommendations
        from trainer.video.module import LossSettings, MultiViewVideoModel

        mode = "aggressive" if args.aggressive_augmentation else args.augmentation
        dataset = augmentation_for(dataset, mode)
        data_root = args.data_root or dataset.data_root
        datamodule = VideoDM(
            dataset, args.batch_size, args.num_workers, args.seed, args.steps_per_epoch, data_root
        )
        datamodule.setup("fit")
        optim = OptimSettings(
            learning_rate=args.learning_rate, core_lr_scale=args.core_lr_scale,
            weight_decay=args.weight_decay, lr_scheduler=args.lr_scheduler,
            warmup_epochs=args.warmup_epochs, restart_period=args.restart_period,
            max_epochs=args.max_epochs, steps_per_epoch=args.steps_per_epoch,
        )  # fmt: skip
        loss = LossSettings(
            args.loss_function, args.focal_gamma, args.focal_alpha, args.class_weight_max,
            args.task_weights,
        )  # fmt: skip
        model = MultiViewVideoModel(
            model_config, datamodule.vocabularies, datamodule.class_counts(), optim, loss,
            replace(dataset, data_root=None).to_dict(),
        )  # fmt: skip
        if args.compile:
            model.compile()
        if layout.is_rank_zero:
            print(config_summary(args, model_config, dataset), flush=True)
            n_params = sum(p.numel() for p in model.parameters())
            optimum = datamodule.optimum()
            print(
                "[config] optimum     Bayes-optimal balanced accuracy "
                + ", ".join(f"{t} {o['balanced_accuracy']:.3f}" for t, o in optimum.items()),
                flush=True,
            )
            for line in dataset_recommendations(
                dataset.n_train, datamodule.class_counts(), n_params, args.batch_size,
                layout.world_size,
            ):  # fmt: skip
                print(f"[recommendation] {line}", flush=True)
        return datamodule, model

    def result(self, history, run_facts: dict, datamodule: Any) -> dict[str, Any]:
        return build_classification_result(
            history=history,
            tasks=datamodule.task_names,
            run=run_facts,
            optimum=datamodule.optimum(),
        )

    def generate(self, args: argparse.Namespace) -> str:
        """Write the synthetic clips to the cache (``corejob-train generate``)."""
        from trainer.video.data.store import cache_dir, load_split

        dataset = load_video_dataset(args.dataset_configs_path)
        root = args.data_root or dataset.data_root
        if root is None:
            raise ConfigError("--data_root", "None", "generate needs a directory to write to")
        for split in ("train", "val"):
            load_split(dataset, split, root)
        return f"generated {dataset.name} under {cache_dir(dataset, root)}"
