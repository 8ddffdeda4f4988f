"""``corejob-train evaluate``: per-session validation bits/spike of any checkpoint.

The numbers are the training loop's own: the checkpoint's network is restored into our
``MultiDatasetModel`` and Lightning's ``validate`` runs its validation step over the
data module's validation split (same null model, same sufficient statistics), so an
evaluated corejob checkpoint reports what its run logged. Synthetic sessions also get the
oracle (the true rates' bits/spike on the same samples).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytorch_lightning as pl

from trainer.contract.result import finite_or_none
from trainer.data import MultiDatasetDM, load_dataset_config
from trainer.models.bits_per_spike import oracle_bps
from trainer.models.checkpoints.files import CheckpointModel, read_checkpoint_model
from trainer.models.checkpoints.restore import check_sessions, restore_state
from trainer.models.lightning_module import MultiDatasetModel


@dataclass(frozen=True)
class EvaluationRequest:
    checkpoint: str
    dataset_config: str
    data_root: str | None = None
    derived_dir: str | None = None
    max_datasets: int | None = None
    model_config: str | None = None
    trust: bool = False
    batch_size: int = 256
    num_workers: int = 0
    accelerator: str = "cpu"


def evaluate_checkpoint(request: EvaluationRequest) -> dict[str, Any]:
    """The evaluation report (JSON-ready): checkpoint facts + one row per session."""
    ckpt = read_checkpoint_model(request.checkpoint, request.model_config, request.trust)
    config = load_dataset_config(
        request.dataset_config, data_root=request.data_root, max_datasets=request.max_datasets
    )
    datamodule = MultiDatasetDM(
        config,
        batch_size=request.batch_size,
        num_workers=request.num_workers,
        derived_dir=request.derived_dir,
    )
    datamodule.prepare_data()
    datamodule.setup("fit")
    sessions = datamodule.sessions_info
    check_sessions(ckpt, sessions, config.source or request.dataset_config)
    module = MultiDatasetModel(ckpt.model_config, sessions, None, config.to_dict())
    restore_state(module.model, ckpt)
    trainer = pl.Trainer(
        accelerator=request.accelerator, devices=1, precision="32-true", logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        use_distributed_sampler=False,
    )  # fmt: skip
    history_calls: list[int] = []
    hooks = [
        mlp.register_forward_hook(lambda *_: history_calls.append(1))
        for mlp in getattr(module.model, "spike_history", [])
    ]
    metrics = trainer.validate(module, datamodule=datamodule, verbose=False)[0]
    for hook in hooks:
        hook.remove()
    oracle = oracle_bps(datamodule)  # {} for recorded sessions (no true rates)
    report = _report(ckpt, request.dataset_config, sessions, metrics, oracle)
    # A history model evaluated on data without spike history is missing a term: say so.
    report["history_used"] = bool(history_calls) if hooks else None
    return report


def _report(ckpt: CheckpointModel, dataset: str, sessions, metrics, oracle) -> dict[str, Any]:
    rows = []
    for info in sessions:
        value = metrics.get(f"val_bps/{info.name}")
        rows.append(
            {
                "session": info.name,
                "units": info.n_units,
                "bits_per_spike": finite_or_none(value),
                "oracle_bits_per_spike": finite_or_none(oracle.get(info.name)),
            }
        )
    return {
        "checkpoint": ckpt.path,
        "kind": ckpt.kind,
        "model": ckpt.model_config.get("name"),
        "dataset": dataset,
        "sessions": rows,
        "bits_per_spike_overall": finite_or_none(metrics.get("val_bps_overall")),
        "val_loss": finite_or_none(metrics.get("val_loss")),
    }


def report_table(report: dict[str, Any]) -> str:
    """The report as an aligned text table (sessions, then the overall mean)."""
    width = max([len("session"), len("overall")] + [len(r["session"]) for r in report["sessions"]])
    lines = [f"{'session':<{width}}  {'units':>5}  {'bits/spike':>10}  {'oracle':>8}"]
    for row in report["sessions"]:
        lines.append(
            f"{row['session']:<{width}}  {row['units']:>5}  {_cell(row['bits_per_spike'], 10)}"
            f"  {_cell(row['oracle_bits_per_spike'], 8)}"
        )
    units = sum(r["units"] for r in report["sessions"])
    overall = _cell(report["bits_per_spike_overall"], 10)
    lines.append(f"{'overall':<{width}}  {units:>5}  {overall}  {'':>8}")
    if report.get("history_used") is False:
        lines.append(
            f"note: {report['model']} adds a spike-history term, but {report['dataset']} gives"
            " no spike history: these numbers are without it"
        )
    return "\n".join(line.rstrip() for line in lines)


def _cell(value: float | None, width: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.4f}"
