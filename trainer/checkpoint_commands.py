"""``corejob-train evaluate`` and ``predict``: what a trained checkpoint (ours or
VisionCore's) says about data. Arguments here, the work in ``trainer.models.checkpoints``.

Torch-free at import (``trainer.cli`` builds its parser before torch loads).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from trainer.contract.flag_types import positive_int

TRUST_HELP = (
    "load a checkpoint that needs full unpickling (a pickle can run code: only for files"
    " you trust); without it such a file is refused with the reason"
)
MODEL_CONFIG_HELP = (
    "model config (name or YAML) for a VisionCore checkpoint without"
    " hyper_parameters.model_config_dict (older ones: only model_cfg); overrides it otherwise"
)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model_config", default=None, help=MODEL_CONFIG_HELP)
    parser.add_argument("--trust_checkpoint", action="store_true", help=TRUST_HELP)
    parser.add_argument("--batch_size", type=positive_int, default=256, help="samples per pass")
    parser.add_argument(
        "--accelerator", choices=("auto", "cpu", "gpu"), default="cpu", help="auto: gpu with CUDA"
    )
    parser.add_argument("--debug", action="store_true", help="print tracebacks on errors")


def add_checkpoint_commands(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """The ``evaluate`` and ``predict`` subparsers of ``corejob-train``."""
    evaluate = sub.add_parser(
        "evaluate",
        help="per-session validation bits/spike of a checkpoint (corejob or VisionCore)",
        formatter_class=formatter,
    )
    evaluate.add_argument("checkpoint", help="a corejob or VisionCore Lightning checkpoint")
    evaluate.add_argument(
        "--dataset_configs_path",
        required=True,
        help="dataset config whose sessions are the checkpoint's readouts, in order",
    )
    evaluate.add_argument("--data_root", default=None, help="data directory (overrides the config)")
    evaluate.add_argument(
        "--derived_dir", default=None, help="as training's --derived_dir (read-only data)"
    )
    evaluate.add_argument("--max_datasets", type=positive_int, default=None)
    evaluate.add_argument("--num_workers", type=int, default=0, help="loader workers")
    evaluate.add_argument("--output", default=None, help="also write the report to this JSON file")
    _common(evaluate)
    predict = sub.add_parser(
        "predict",
        help="a checkpoint's responses to given inputs (IN.pt -> OUT.pt)",
        formatter_class=formatter,
    )
    predict.add_argument("--checkpoint", required=True, help="a corejob or VisionCore checkpoint")
    predict.add_argument(
        "--inputs",
        required=True,
        help="torch.save of {stimulus (B,1,L,H,W)|None, behavior (B,D)|None,"
        " history (B,lags,N)|None, dataset_idx int}",
    )
    predict.add_argument("--output", required=True, help='written atomically: {"output": (B, N)}')
    _common(predict)


def run_evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """Evaluate, print the table, write ``--output``; returns the report."""
    from trainer.contract.distributed import resolve_accelerator
    from trainer.contract.result import write_json_atomic
    from trainer.models.checkpoints.evaluate import (
        EvaluationRequest,
        evaluate_checkpoint,
        report_table,
    )

    report = evaluate_checkpoint(
        EvaluationRequest(
            checkpoint=args.checkpoint,
            dataset_config=args.dataset_configs_path,
            data_root=args.data_root,
            derived_dir=args.derived_dir,
            max_datasets=args.max_datasets,
            model_config=args.model_config,
            trust=args.trust_checkpoint,
            batch_size=args.batch_size,
            num_workers=args.num_workers,
            accelerator=resolve_accelerator(args.accelerator),
        )
    )
    print(report_table(report), flush=True)
    if args.output:
        write_json_atomic(Path(args.output), report)
        print(f"wrote {args.output}", flush=True)
    return report


def run_predict(args: argparse.Namespace) -> tuple[int, int]:
    """Predict and write ``--output``; prints its shape."""
    from trainer.contract.distributed import resolve_accelerator
    from trainer.models.checkpoints.predict import predict_file

    device = "cuda" if resolve_accelerator(args.accelerator) == "gpu" else "cpu"
    shape = predict_file(
        args.checkpoint, args.inputs, args.output, args.model_config,
        args.trust_checkpoint, args.batch_size, device,
    )  # fmt: skip
    print(f"wrote {args.output}: output {tuple(shape)}", flush=True)
    return shape
