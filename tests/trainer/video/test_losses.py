"""Class weights, focal loss and the multi-task loss against their formulas."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from trainer.contract.errors import ConfigError
from trainer.video.losses.classification import (
    MultiTaskLoss,
    TaskLoss,
    class_weights,
    focal_loss,
)


def reference_weights(counts: list[int], max_weight: float) -> list[float]:
    """w_c = N / (K n_c), n_c floored at 1, clipped to [1/max, max], then scaled so the
    sample-weighted mean sum_c n_c w_c / N is 1."""
    n = [max(c, 1) for c in counts]
    total, k = sum(n), len(n)
    clipped = [min(max(total / (k * c), 1 / max_weight), max_weight) for c in n]
    mean = sum(c * w for c, w in zip(n, clipped, strict=True)) / total
    return [w / mean for w in clipped]


@pytest.mark.parametrize(
    ("counts", "max_weight"),
    [([100, 100, 100], 10.0), ([800, 150, 50], 10.0), ([1000, 10, 0], 5.0), ([7, 3], 1.0)],
)
def test_class_weights_follow_the_balanced_formula_with_limits(counts, max_weight):
    weights = class_weights(counts, max_weight)
    assert weights.tolist() == pytest.approx(reference_weights(counts, max_weight), rel=1e-6)
    n = torch.tensor(counts, dtype=torch.float).clamp_min(1)
    assert float((weights * n).sum() / n.sum()) == pytest.approx(1.0)  # CE's scale kept


def test_class_weights_limit_the_ratio_and_favour_rare_classes():
    weights = class_weights([10_000, 1000, 100, 1], max_weight=10.0)
    assert weights[3] == weights[2] > weights[1] > weights[0]  # the rarest two hit the limit
    assert float(weights.max() / weights.min()) <= 10.0**2 + 1e-3  # clipped at both ends
    assert all(math.isfinite(w) for w in class_weights([5, 0, 0]).tolist())  # absent classes
    with pytest.raises(ConfigError, match="--class_weight_max"):
        class_weights([1, 2], max_weight=0.5)


def test_focal_loss_matches_its_definition():
    torch.manual_seed(0)
    logits, target = torch.randn(12, 4), torch.randint(0, 4, (12,))
    alpha = torch.tensor([0.5, 1.0, 2.0, 4.0])
    gamma = 2.0
    expected = 0.0
    for row, t in zip(logits, target, strict=True):
        p_t = math.exp(row[t]) / sum(math.exp(v) for v in row)
        expected += -alpha[t].item() * (1 - p_t) ** gamma * math.log(p_t)
    expected /= len(target)
    assert focal_loss(logits, target, gamma, alpha).item() == pytest.approx(expected, rel=1e-5)
    # gamma 0 without alpha is cross-entropy; focal down-weights easy examples
    assert focal_loss(logits, target, 0.0).item() == pytest.approx(
        F.cross_entropy(logits, target).item(), rel=1e-6
    )
    assert focal_loss(logits, target, 2.0).item() < F.cross_entropy(logits, target).item()


def test_weighted_ce_is_the_mean_of_weighted_nll():
    torch.manual_seed(1)
    logits, target = torch.randn(9, 3), torch.randint(0, 3, (9,))
    weights = torch.tensor([0.3, 1.0, 3.0])
    nll = [-torch.log_softmax(row, 0)[t].item() for row, t in zip(logits, target, strict=True)]
    expected = sum(weights[t].item() * v for t, v in zip(target, nll, strict=True)) / 9
    got = TaskLoss("weighted_ce", weights, 2.0)(logits, target).item()
    assert got == pytest.approx(expected, rel=1e-6)


def test_multi_task_loss_is_the_weighted_mean_of_task_losses():
    torch.manual_seed(2)
    logits = {"shape": torch.randn(6, 3), "motion": torch.randn(6, 4)}
    labels = torch.stack([torch.randint(0, 3, (6,)), torch.randint(0, 4, (6,))], dim=1)
    loss = MultiTaskLoss("ce", {"shape": [5, 5, 5], "motion": [3, 3, 3, 3]}, {"shape": 3.0})
    total, per_task = loss(logits, labels)
    shape = F.cross_entropy(logits["shape"], labels[:, 0]).item()
    motion = F.cross_entropy(logits["motion"], labels[:, 1]).item()
    assert per_task["shape"].item() == pytest.approx(shape)
    assert total.item() == pytest.approx((3 * shape + motion) / 4)
    with pytest.raises(ConfigError, match="--task_weights: colour: no such task"):
        MultiTaskLoss("ce", {"shape": [1, 1]}, {"colour": 1.0})
    with pytest.raises(ConfigError, match="--loss_function: hinge"):
        MultiTaskLoss("hinge", {"shape": [1, 1]})
