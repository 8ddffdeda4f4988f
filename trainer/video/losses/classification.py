"""Classification losses of the video family and the multi-task loss that combines them.

- ``ce``: cross-entropy.
- ``weighted_ce``: cross-entropy with class weights from the training label frequencies,
  ``w_c = N / (K n_c)`` ("balanced" weights: every class contributes equally in
  expectation), with safety limits: counts are floored at one (an absent class gets a
  finite weight), weights are clipped to ``[1 / max_weight, max_weight]`` (one very rare
  class cannot dominate the gradient; the largest/smallest ratio stays <= ``max_weight``²),
  then rescaled so the sample-weighted mean weight is one (the loss keeps the scale of
  plain CE, so learning rates carry over).
- ``focal``: focal loss (Lin et al. 2017), ``-alpha_c (1 - p_t)^gamma log p_t``, with the
  same class weights as ``alpha`` when ``focal_alpha`` is on; ``gamma = 0`` and no
  ``alpha`` is plain CE.

The multi-task loss is the weighted mean of the per-task losses (weights from
``--task_weights``, default equal).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from trainer.contract.errors import ConfigError

LOSSES = ("ce", "weighted_ce", "focal")


def class_weights(counts: Sequence[int], max_weight: float = 10.0) -> torch.Tensor:
    """Balanced class weights from label counts, clipped and mean-normalised (see module)."""
    if max_weight < 1.0:
        raise ConfigError("--class_weight_max", str(max_weight), "must be >= 1")
    n = torch.tensor([float(c) for c in counts]).clamp_min(1.0)
    raw = n.sum() / (len(counts) * n)
    clipped = raw.clamp(1.0 / max_weight, max_weight)
    return clipped / ((clipped * n).sum() / n.sum())


def focal_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    gamma: float = 2.0,
    alpha: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean focal loss over the batch (float32, even under autocast)."""
    log_p = F.log_softmax(logits.float(), dim=-1)
    log_pt = log_p.gather(1, target.view(-1, 1)).squeeze(1)
    loss = -((1.0 - log_pt.exp()) ** gamma) * log_pt
    if alpha is not None:
        loss = loss * alpha.to(loss.device)[target]
    return loss.mean()


class TaskLoss(nn.Module):
    """One task's loss; class weights are a buffer (moved with the model, in checkpoints)."""

    def __init__(self, kind: str, weights: torch.Tensor | None, gamma: float) -> None:
        super().__init__()
        if kind not in LOSSES:
            raise ConfigError("--loss_function", kind, f"unknown; allowed: {', '.join(LOSSES)}")
        self.kind, self.gamma = kind, gamma
        self.register_buffer("weights", weights if weights is not None else torch.empty(0))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        weights = self.weights if self.weights.numel() else None
        if self.kind == "focal":
            return focal_loss(logits, target, self.gamma, weights)
        if self.kind == "weighted_ce":
            # mean of w_i * nll_i over the batch (not PyTorch's sum(w nll) / sum(w)): the
            # weights are already normalised over the training set
            nll = F.cross_entropy(logits.float(), target, reduction="none")
            return (nll * weights[target]).mean()
        return F.cross_entropy(logits.float(), target)


class MultiTaskLoss(nn.Module):
    """``sum_t lambda_t L_t / sum_t lambda_t`` over the tasks; also returns each ``L_t``."""

    def __init__(
        self,
        kind: str,
        class_counts: Mapping[str, Sequence[int]],
        task_weights: Mapping[str, float] | None = None,
        gamma: float = 2.0,
        max_weight: float = 10.0,
        focal_alpha: bool = False,
    ) -> None:
        super().__init__()
        task_weights = dict(task_weights or {})
        unknown = sorted(set(task_weights) - set(class_counts))
        if unknown:
            raise ConfigError(
                "--task_weights", unknown[0], f"no such task; tasks: {', '.join(class_counts)}"
            )
        weighted = kind == "weighted_ce" or (kind == "focal" and focal_alpha)
        self.losses = nn.ModuleDict(
            {
                task: TaskLoss(kind, class_weights(counts, max_weight) if weighted else None, gamma)
                for task, counts in class_counts.items()
            }
        )
        self.lambdas = {task: float(task_weights.get(task, 1.0)) for task in class_counts}
        if sum(self.lambdas.values()) <= 0:
            raise ConfigError("--task_weights", str(task_weights), "need a positive weight")

    def forward(
        self, logits: Mapping[str, torch.Tensor], labels: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``labels``: ``(B, tasks)`` in the order of ``class_counts``."""
        per_task = {
            task: loss(logits[task], labels[:, i])
            for i, (task, loss) in enumerate(self.losses.items())
        }
        total = sum(self.lambdas[t] * value for t, value in per_task.items())
        return total / sum(self.lambdas.values()), per_task
