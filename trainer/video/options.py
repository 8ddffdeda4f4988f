"""The video family's trainer flags, in the one trainer parser (``trainer/cli.py``).

Light (argparse only): the trainer's parser is built before torch loads. Flags of this
group mean nothing to a V1 run; ``video_flags_set`` lets the V1 path refuse them in one
line instead of ignoring them.
"""

from __future__ import annotations

import argparse

from trainer.contract.flag_types import at_least_one, non_negative_float, non_negative_int

LOSS_FUNCTIONS = ("ce", "weighted_ce", "focal")
AUGMENTATIONS = ("config", "aggressive", "none")
DEFAULTS = {
    "loss_function": "ce",
    "focal_gamma": 2.0,
    "focal_alpha": False,
    "class_weight_max": 10.0,
    "task_weights": None,
    "gradual_finetuning": False,
    "frozen_epochs": 1,
    "aggressive_augmentation": False,
    "augmentation": "config",
}


def _task_weights(text: str) -> dict[str, float]:
    """``shape=2,motion=1`` → ``{"shape": 2.0, "motion": 1.0}``."""
    out = {}
    for part in filter(None, text.split(",")):
        name, sep, value = part.partition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = -1.0
        if not sep or not name or weight < 0:
            raise argparse.ArgumentTypeError(f"{part!r}: expected TASK=WEIGHT (WEIGHT >= 0)")
        out[name.strip()] = weight
    return out


def add_video_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``video family`` argument group (losses, gradual fine-tuning, augmentation)."""
    group = parser.add_argument_group(
        "video family (model configs with family: video, e.g. r3d_small)"
    )
    group.add_argument(
        "--loss_function",
        choices=LOSS_FUNCTIONS,
        default=DEFAULTS["loss_function"],
        help="per-task loss: cross-entropy, class-weighted CE (weights from label"
        " frequencies, clipped), or focal",
    )
    group.add_argument("--focal_gamma", type=non_negative_float, default=DEFAULTS["focal_gamma"])
    group.add_argument(
        "--focal_alpha", action="store_true", help="focal loss with the class weights as alpha"
    )
    group.add_argument(
        "--class_weight_max",
        type=at_least_one,
        default=DEFAULTS["class_weight_max"],
        help="safety limit: class weights are clipped to [1/MAX, MAX]",
    )
    group.add_argument(
        "--task_weights",
        type=_task_weights,
        default=None,
        help="multi-task loss weights, e.g. shape=2,motion=1 (default: equal)",
    )
    group.add_argument(
        "--gradual_finetuning",
        action="store_true",
        help="backbone frozen for --frozen_epochs, then its stages open one per"
        " --unfreeze_every epochs at --unfrozen_lr_scale x LR (= --finetune_strategy"
        " progressive)",
    )
    group.add_argument(
        "--frozen_epochs",
        type=non_negative_int,
        default=DEFAULTS["frozen_epochs"],
        help="gradual fine-tuning: epochs with the whole backbone frozen",
    )
    group.add_argument(
        "--aggressive_augmentation",
        action="store_true",
        help="the aggressive GPU-side set (jitter 2, brightness, contrast, noise, shift,"
        " view dropout) instead of the dataset config's",
    )
    group.add_argument(
        "--augmentation",
        choices=AUGMENTATIONS,
        default=DEFAULTS["augmentation"],
        help="config: the dataset config's augmentation section; none: off",
    )


def video_flags_set(args: argparse.Namespace) -> list[str]:
    """The video-only flags given a non-default value (``--loss_function`` ...)."""
    return [
        f"--{key}" for key, default in DEFAULTS.items() if getattr(args, key, default) != default
    ]
