"""The video trainer's own command line: ``python -m trainer.video.train ...``.

Users of the original multi-task video trainer type ``--dataset_root … --epochs 50
--batch_size 16 --gradual_finetuning --aggressive_augmentation --loss_function focal``;
those command lines work here unchanged. This module only translates: legacy argument
names become the trainer's names, the family's defaults (``r3d_small`` on
``synthetic_views``, batch 16, 50 epochs) go in front (anything typed wins), and
``--simple_training`` pins the plain baseline. Parsing, validation, exit codes and the
run itself are the one trainer's (``trainer.cli``), so both entry points behave the same.
Light: no torch here (SIGTERM must be handled before torch loads).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

# Legacy name -> trainer name (the original trainer's spellings).
LEGACY_NAMES = {
    "--lr": "--learning_rate",
    "--num_epochs": "--max_epochs",
    "--data_dir": "--data_root",
    "--output_dir": "--run_dir",
    "--loss": "--loss_function",
    "--freeze_strategy": "--finetune_strategy",
    "--patience": "--early_stopping_patience",
    "--model": "--model_config",
    "--dataset": "--dataset_configs_path",
    "--workers": "--num_workers",
    "--resume_checkpoint": "--ckpt_path",
}
FAMILY_DEFAULTS = (
    "--model_config", "r3d_small", "--dataset_configs_path", "synthetic_views",
    "--batch_size", "16", "--max_epochs", "50", "--early_stopping_patience", "10",
)  # fmt: skip
SIMPLE_FLAG = "--simple_training"
# What simple mode turns off, and the flags that contradict it.
SIMPLE_SETTINGS = ("--loss_function", "ce", "--augmentation", "none")
SIMPLE_CONFLICTS = ("--gradual_finetuning", "--aggressive_augmentation", "--finetune_strategy",
                    "--freeze_vision", "--task_weights")  # fmt: skip


class UsageError(ValueError):
    """A command line this entry point refuses (one line, exit 2)."""


def translate_legacy(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """``argv`` with legacy names replaced (``--lr 0.1``, ``--lr=0.1``), and notes."""
    out, notes = [], []
    for arg in argv:
        name, sep, value = arg.partition("=")
        if name in LEGACY_NAMES:
            new = LEGACY_NAMES[name]
            notes.append(f"{name} is the legacy name of {new}")
            arg = f"{new}{sep}{value}" if sep else new
        out.append(arg)
    return out, notes


def simple_mode(argv: list[str]) -> list[str]:
    """``--simple_training``: plain CE, no augmentation, no freezing (a baseline run)."""
    if SIMPLE_FLAG not in argv:
        return argv
    names = {arg.partition("=")[0] for arg in argv}
    for flag in SIMPLE_CONFLICTS:
        if flag in names:
            raise UsageError(f"{SIMPLE_FLAG} trains the plain baseline; drop {flag}")
    loss = [i for i, a in enumerate(argv) if a.partition("=")[0] == "--loss_function"]
    if loss:
        raise UsageError(f"{SIMPLE_FLAG} uses --loss_function ce; drop --loss_function")
    return [a for a in argv if a != SIMPLE_FLAG] + list(SIMPLE_SETTINGS)


def video_argv(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """The trainer command line for a video-trainer command line, and notes to print."""
    args = list(argv)
    if args and args[0] == "train":
        args = args[1:]
    if any(a in ("-h", "--help") for a in args):
        return ["train", "--help"], []
    args, notes = translate_legacy(args)
    args = simple_mode(args)
    return ["train", *FAMILY_DEFAULTS, *args], notes


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m trainer.video.train``."""
    from trainer.cli import main as trainer_main
    from trainer.contract import exit_codes

    try:
        args, notes = video_argv(sys.argv[1:] if argv is None else argv)
    except UsageError as error:
        print(f"trainer.video.train: error: {error}", file=sys.stderr, flush=True)
        raise SystemExit(exit_codes.CONFIG_ERROR) from None
    for note in notes:
        print(f"[config] {note}", flush=True)
    trainer_main(args)
