"""Validation metrics from confusion matrices: exact under DDP.

Each rank adds its validation predictions into one ``K x K`` count matrix per task; the
matrices are all-reduced once at the end of validation (one collective for all tasks),
and only then turned into numbers, so every rank logs identical, exact values (no mean of
per-rank means). Names: ``val_acc/<task>`` (accuracy), ``val_bacc/<task>`` (balanced
accuracy: mean per-class recall), ``val_f1/<task>`` (macro F1), ``val_macro_acc`` (mean
balanced accuracy over tasks: the family's headline metric), ``val_macro_f1``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch

HEADLINE = "val_macro_acc"
HEADLINE_LABEL = "val macro accuracy"


class ConfusionMatrices:
    def __init__(self, sizes: Mapping[str, int], device: torch.device | str = "cpu") -> None:
        self.tasks = list(sizes)
        self.sizes = dict(sizes)
        total = sum(k * k for k in sizes.values())
        self.counts = torch.zeros(total, dtype=torch.float64, device=device)

    def _view(self, task: str) -> torch.Tensor:
        start = 0
        for name in self.tasks:
            k = self.sizes[name]
            if name == task:
                return self.counts[start : start + k * k].view(k, k)
            start += k * k
        raise KeyError(task)

    def add(self, task: str, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Rows: observed label; columns: prediction."""
        k = self.sizes[task]
        flat = labels.long() * k + logits.argmax(dim=-1)
        counts = torch.bincount(flat, minlength=k * k).to(self.counts)
        self._view(task).add_(counts.view(k, k))

    def reduce(self, all_reduce: Callable[[torch.Tensor], torch.Tensor] | None) -> None:
        if all_reduce is not None:
            self.counts = all_reduce(self.counts)

    def summary(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for task in self.tasks:
            out.update({f"{key}/{task}": v for key, v in task_metrics(self._view(task)).items()})
        balanced = [out[f"val_bacc/{t}"] for t in self.tasks]
        f1 = [out[f"val_f1/{t}"] for t in self.tasks]
        out[HEADLINE] = sum(balanced) / len(balanced)
        out["val_macro_f1"] = sum(f1) / len(f1)
        return out


def task_metrics(matrix: torch.Tensor) -> dict[str, float]:
    """Accuracy, balanced accuracy and macro F1 of one confusion matrix.

    Classes absent from the labels are left out of the balanced accuracy and F1 means
    (their recall is undefined); a class never predicted has precision 0.
    """
    matrix = matrix.double()
    true = matrix.sum(dim=1)
    predicted = matrix.sum(dim=0)
    hits = matrix.diagonal()
    present = true > 0
    recall = hits / true.clamp_min(1)
    precision = hits / predicted.clamp_min(1)
    f1 = torch.where(
        recall + precision > 0, 2 * recall * precision / (recall + precision), recall * 0
    )
    n_present = max(int(present.sum()), 1)
    return {
        "val_acc": float(hits.sum() / true.sum().clamp_min(1)),
        "val_bacc": float(recall[present].sum() / n_present),
        "val_f1": float(f1[present].sum() / n_present),
    }


def per_task(history_record: Mapping[str, float], prefix: str, tasks: Sequence[str]):
    """``{task: value}`` of ``prefix/<task>`` keys in a history record (None if missing)."""
    return {task: history_record.get(f"{prefix}/{task}") for task in tasks}
