"""``corejob-train`` / ``python -m trainer``: the trainer's command line (docs/CONTRACT.md).

Subcommands: ``train`` (the default when the first argument is an option, so VisionCore's
``train_ddp_multidataset.py`` command lines keep working), ``generate`` (synthetic
sessions onto a data volume ahead of time), ``plot`` (figures of a finished run),
``evaluate`` and ``predict`` (a corejob or VisionCore checkpoint on data or given inputs).
Errors become one line on stderr and an exit code from :mod:`trainer.contract.exit_codes`; the
traceback appears only with ``--debug``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from corejob.cli_help import DefaultsHelpFormatter
from trainer.callbacks.wandb_logger import MODES as WANDB_MODES
from trainer.checkpoint_commands import TRUST_HELP, add_checkpoint_commands

# Light imports only: the SIGTERM handler must be in place before torch loads (preemption).
from trainer.contract import exit_codes
from trainer.contract.errors import CorejobTrainError, first_line
from trainer.contract.flag_types import fraction, non_negative_float, non_negative_int, positive_int
from trainer.contract.preemption import Preempted, SigtermFlag
from trainer.video.options import add_video_arguments

PROG = "corejob-train"
SUBCOMMANDS = ("train", "generate", "plot", "evaluate", "predict", "import-visioncore")
SCHEDULERS = ("cosine", "cosine_restarts", "none")
DSET_DTYPES = ("uint8", "bfloat16", "float32")
PRECISIONS = ("32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true")


def _add_data_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset_configs_path",
        default="synthetic_mixed",
        help="dataset config: a name under trainer/configs/datasets/ or a YAML path",
    )
    parser.add_argument("--data_root", default=None, help="data directory (overrides the config)")
    parser.add_argument(
        "--dataset_root",
        dest="data_root",
        default=argparse.SUPPRESS,
        help="= --data_root (the video trainer's name)",
    )
    parser.add_argument(
        "--derived_dir",
        default=None,
        help="where missing derived training arrays are written when the data volume is"
        " read-only (a folder every rank shares); default: beside each raw session",
    )
    parser.add_argument("--max_datasets", type=positive_int, default=None)
    parser.add_argument("--debug", action="store_true", help="print tracebacks on errors")


def _add_optim_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("optimization")
    group.add_argument("--batch_size", type=positive_int, default=128, help="per process")
    group.add_argument("--learning_rate", type=float, default=1e-3)
    group.add_argument("--core_lr_scale", type=float, default=1.0, help="core LR = scale x LR")
    group.add_argument("--weight_decay", type=float, default=1e-4)
    group.add_argument("--max_epochs", type=positive_int, default=100)
    group.add_argument(
        "--epochs",
        dest="max_epochs",
        type=positive_int,
        default=argparse.SUPPRESS,
        help="= --max_epochs (the video trainer's name)",
    )
    group.add_argument("--gradient_clip_val", type=float, default=None)
    group.add_argument("--accumulate_grad_batches", type=positive_int, default=1)
    group.add_argument("--lr_scheduler", choices=SCHEDULERS, default="cosine")
    group.add_argument("--warmup_epochs", type=float, default=1.0)
    group.add_argument(
        "--restart_period", type=positive_int, default=None, help="epochs per cosine cycle"
    )
    group.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help="default: bf16-mixed on GPU, else 32-true; bf16-mixed is ~1.6x faster on CPUs"
        " with native bf16 (AVX512-BF16, AMX)",
    )
    group.add_argument("--early_stopping_patience", type=int, default=None)
    group.add_argument("--early_stopping_min_delta", type=float, default=0.0)
    group.add_argument("--seed", type=int, default=0)


def _add_runtime_args(parser: argparse.ArgumentParser) -> None:
    from trainer.contract.distributed import DEFAULT_DDP_TIMEOUT_S

    group = parser.add_argument_group("runtime")
    group.add_argument("--dset_dtype", choices=DSET_DTYPES, default="uint8")
    group.add_argument("--num_workers", type=non_negative_int, default=0, help="loader workers")
    group.add_argument(
        "--data_on_device",
        choices=("auto", "always", "never"),
        default="auto",
        help="hold every session on the GPU and gather batches there (auto: when they fit"
        " in --data_on_device_share of its memory; never on the CPU)",
    )
    group.add_argument(
        "--data_on_device_share",
        type=fraction,
        default=0.4,
        help="share of the GPU's memory the sessions may take under --data_on_device auto",
    )
    group.add_argument("--steps_per_epoch", type=positive_int, default=None)
    group.add_argument(
        "--limit_val_batches", type=float, default=None, help="fraction (<= 1) or count (> 1)"
    )
    group.add_argument("--compile", action="store_true", help="torch.compile the model")
    group.add_argument("--accelerator", choices=("auto", "cpu", "gpu"), default="auto")
    group.add_argument("--ddp_timeout_s", type=float, default=DEFAULT_DDP_TIMEOUT_S)
    group.add_argument(
        "--progress_every_seconds",
        type=non_negative_float,
        default=10.0,
        help="rank 0 prints a COREJOB_PROGRESS line this often, after the first step and at"
        " the end (what corejob status/--wait/sweep show; 0: none)",
    )


def _add_output_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("outputs and resuming")
    group.add_argument("--run_dir", default="runs/default", help="metrics, logs, checkpoints")
    group.add_argument("--checkpoint_dir", default=None, help="default: RUN_DIR/checkpoints")
    group.add_argument("--save_top_k", type=int, default=3, help="best checkpoints kept")
    group.add_argument(
        "--resume",
        default="auto",
        help="auto (CHECKPOINT_DIR/last.ckpt if present) | never | PATH",
    )
    group.add_argument(
        "--ckpt_path", default=None, help="resume from this checkpoint (VisionCore's name)"
    )
    group.add_argument(
        "--checkpoint_every_minutes",
        type=non_negative_float,
        default=15.0,
        help="also save last.ckpt this often inside epochs (bounds work lost to a preemption"
        " or node loss; 0: only at epoch ends)",
    )
    group.add_argument(
        "--damaged_checkpoints",
        choices=("fail", "start_fresh"),
        default="fail",
        help="--resume auto when checkpoints exist but none loads: stop with an error, or"
        " train from scratch",
    )
    group.add_argument(
        "--project_name", default=None, help="W&B project (default: $WANDB_PROJECT or corejob)"
    )
    group.add_argument("--experiment_name", default=None, help="W&B run name")


def _add_feature_args(parser: argparse.ArgumentParser) -> None:
    """Curriculum, fine-tuning, time budget and W&B (all off by default)."""
    group = parser.add_argument_group("curriculum, fine-tuning, budget, logging")
    group.add_argument(
        "--enable_curriculum",
        action="store_true",
        help="contrast curriculum: high-contrast samples first, uniform after the warmup",
    )
    group.add_argument("--curriculum_warmup_steps", type=int, default=1000)
    group.add_argument(
        "--pretrained_checkpoint",
        default=None,
        help="checkpoint (corejob or VisionCore) whose vision core to load",
    )
    group.add_argument(
        "--pretrained_heads",
        action="store_true",
        help="also load its adapters, readouts, baselines, history MLPs (same sessions, in order)",
    )
    group.add_argument("--trust_checkpoint", action="store_true", help=TRUST_HELP)
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
        choices=WANDB_MODES,
        default=None,
        help="default: $WANDB_MODE, else online with an API key and offline without",
    )
    group.add_argument("--wandb_entity", default=None)
    group.add_argument("--wandb_tags", nargs="*", default=None)


class _OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line (the full usage is long); ``--help`` still shows it."""

    def error(self, message: str) -> NoReturn:
        self.exit(exit_codes.CONFIG_ERROR, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog=PROG,
        description="Train multi-dataset models of visual cortex.",
        formatter_class=DefaultsHelpFormatter,
    )
    sub = parser.add_subparsers(
        dest="command", metavar="{" + ",".join(SUBCOMMANDS) + "}", parser_class=_OneLineParser
    )
    train = sub.add_parser(
        "train", help="train a model (default subcommand)", formatter_class=DefaultsHelpFormatter
    )
    train.add_argument(
        "--model_config",
        default="res_small",
        help="model config (V1: res_small, ...; video family: r3d_small, r3d_18): a name"
        " under trainer/configs/models/ or a YAML path",
    )
    _add_data_args(train)
    _add_optim_args(train)
    _add_runtime_args(train)
    _add_output_args(train)
    _add_feature_args(train)
    add_video_arguments(train)
    generate = sub.add_parser(
        "generate",
        help="generate missing synthetic sessions and derive every session's training arrays",
        formatter_class=DefaultsHelpFormatter,
    )
    _add_data_args(generate)
    generate.add_argument(
        "--dset_dtype",
        choices=DSET_DTYPES,
        default="uint8",
        help="stimulus storage the derived arrays are made for (as training's --dset_dtype)",
    )
    from trainer.recordings.visioncore_import import add_import_arguments

    add_import_arguments(
        sub.add_parser(
            "import-visioncore",
            help="convert VisionCore DictDataset recordings (SRC/<session>/datasets/*.dset)"
            " into corejob sessions under DST",
            formatter_class=DefaultsHelpFormatter,
        )
    )
    plot = sub.add_parser(
        "plot",
        help="PNGs of training curves and receptive fields of a run",
        formatter_class=DefaultsHelpFormatter,
    )
    plot.add_argument("run_dir", help="a run directory written by train")
    plot.add_argument("--out_dir", default=None, help="default: RUN_DIR/plots")
    plot.add_argument("--data_root", default=None, help="where the run's sessions live")
    plot.add_argument("--debug", action="store_true", help="print tracebacks on errors")
    add_checkpoint_commands(sub, DefaultsHelpFormatter)
    return parser


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv``; ``train`` is implied when the first argument is not a subcommand."""
    argv = list(argv)
    if argv and argv[0] not in (*SUBCOMMANDS, "-h", "--help"):
        argv.insert(0, "train")
    if not argv:
        argv = ["train"]
    return build_parser().parse_args(argv)


def _dispatch(args: argparse.Namespace, sigterm: SigtermFlag) -> int:
    if args.command == "plot":
        from trainer.plots import plot_run

        for path in plot_run(args.run_dir, args.out_dir, args.data_root):
            print(path, flush=True)
        return exit_codes.SUCCESS
    if args.command in ("evaluate", "predict"):
        from trainer.checkpoint_commands import run_evaluate, run_predict
        from trainer.quiet_logs import quiet_logs

        quiet_logs()
        (run_evaluate if args.command == "evaluate" else run_predict)(args)
        return exit_codes.SUCCESS
    if args.command == "generate":
        from trainer.run import generate

        generate(args)
        return exit_codes.SUCCESS
    if args.command == "import-visioncore":
        from trainer.recordings.visioncore_import import run_import

        run_import(args, out=lambda line: print(line, flush=True))
        return exit_codes.SUCCESS
    from trainer.quiet_logs import quiet_logs
    from trainer.run import train

    quiet_logs()
    train(args, sigterm)
    return exit_codes.SUCCESS


def _report(message: str, debug: bool) -> None:
    if debug:
        traceback.print_exc()
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)


def _storage_error_in(error: BaseException) -> CorejobTrainError | None:
    """A storage ``OSError`` (``error`` or its explicit ``raise ... from`` cause) as one line.

    Full, unreachable or read-only volumes are facts about the volume, not bugs: they get
    a line naming the path and a code that says whether a restart can help (ENOSPC, EIO,
    ESTALE: retryable 144; EROFS, EACCES, EPERM: permanent 3). Only ``__cause__`` is
    followed: an implicit ``__context__`` may be an unrelated error handled on the way.
    """
    from trainer.contract.errors import storage_error

    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError):
            converted = storage_error(current)
            if converted is not None:
                return converted
        current = current.__cause__
    return None


def _exit_code_for(error: BaseException, debug: bool) -> int:
    """Map an exception to the contract's exit code, reporting it as one line."""
    if isinstance(error, Preempted):
        print(f"{PROG}: preempted: {error}", file=sys.stderr, flush=True)
        return exit_codes.PREEMPTED
    if isinstance(error, CorejobTrainError):
        _report(str(error), debug)
        return error.exit_code
    if isinstance(error, KeyboardInterrupt):
        _report("interrupted", debug)
        return 128 + signal.SIGINT
    from trainer.contract.distributed import is_communication_failure

    if is_communication_failure(error):
        first = first_line(error)
        _report(f"distributed communication failed (a peer died or timed out): {first}", debug)
        return exit_codes.DISTRIBUTED_FAILURE
    storage = _storage_error_in(error)
    if storage is not None:
        _report(str(storage), debug)
        return storage.exit_code
    hint = "" if debug else " (re-run with --debug for the traceback)"
    _report(f"unexpected {type(error).__name__}: {error}{hint}", debug)
    return exit_codes.UNEXPECTED_ERROR


def run_cli(argv: Sequence[str]) -> int:
    """Run one command; returns the process exit code (never raises, except SystemExit)."""
    sigterm = SigtermFlag()
    sigterm.install()  # before torch is imported (parse_args already imports it)
    args = None
    try:
        args = parse_args(argv)
        return _dispatch(args, sigterm)
    except (Exception, Preempted, KeyboardInterrupt) as error:
        code = _exit_code_for(error, debug="--debug" in argv)
        _record_failure(args, code, error)
        return code
    except SystemExit as stop:
        # Lightning's own SIGTERM path raises SIGTERMException, a SystemExit without a
        # code (= exit 0): the operator would count a preempted run as finished.
        if type(stop).__name__ == "SIGTERMException":
            code = _exit_code_for(Preempted("SIGTERM (Lightning handler)"), debug=False)
            _record_failure(args, code, stop)
            return code
        raise


def _record_failure(args: argparse.Namespace | None, code: int, error: BaseException) -> None:
    """Rank 0 of a failed training run leaves its record in the run directory (next to the
    checkpoints), so a cluster's results show the failure and its cause after the job is
    gone. A retryable exit is recorded as ``Restarting``: the operator runs it again and
    the next attempt replaces the record. Only into a run directory that exists: a typo
    caught before the run began leaves nothing behind. Best effort: the exit code is the
    contract."""
    if args is None or args.command != "train" or not Path(args.run_dir).is_dir():
        return
    from trainer.contract.distributed import distributed_layout
    from trainer.contract.result import run_identity, write_result_record

    try:
        if distributed_layout(os.environ, "cpu").rank != 0:
            return
        state = "Restarting" if exit_codes.is_retryable(code) else "Failed"
        line = first_line(error)
        message = f"exit code {code}: {type(error).__name__}: {line}"
        run = {"run_dir": args.run_dir, "model": args.model_config,
               "dataset": args.dataset_configs_path}  # fmt: skip
        job = run_identity(os.environ, run, state, "TrainerExited", message)
        write_result_record(Path(args.run_dir), job, None)
    except (CorejobTrainError, OSError):
        pass


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    code = run_cli(sys.argv[1:] if argv is None else argv)
    sys.stdout.flush()
    sys.stderr.flush()
    raise SystemExit(code)
