"""LR schedules: exact values per optimizer step; warmup never sits at LR 0."""

from __future__ import annotations

import math

import pytest
import torch

from trainer.optim.optimizer import OptimSettings, build_scheduler
from trainer.optim.schedulers import (
    LinearWarmupCosineAnnealingLR,
    LinearWarmupCosineAnnealingWarmRestartsLR,
    warmup_cosine_lr,
)


def _optimizer(lrs=(1.0, 0.1)):
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in lrs]
    return torch.optim.SGD(
        [{"params": [p], "lr": lr} for p, lr in zip(params, lrs, strict=True)], lr=1.0
    )


def _trace(scheduler, optimizer, steps):
    lrs = []
    for _ in range(steps):
        lrs.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    return lrs


def test_warmup_cosine_exact_values():
    opt = _optimizer()
    lrs = _trace(LinearWarmupCosineAnnealingLR(opt, warmup_steps=4, total_steps=14), opt, 16)
    head = [lr[0] for lr in lrs]
    assert head[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])  # (s+1)/(W+1), then base
    assert head[5] == pytest.approx(0.5 * (1 + math.cos(math.pi * 1 / 10)))
    assert head[9] == pytest.approx(0.5)  # half way through the cosine
    assert head[14] == pytest.approx(0.0) and head[15] == pytest.approx(0.0)  # clamped at the end
    # Every group follows the same factor: the core/head LR ratio never changes.
    assert all(lr[1] == pytest.approx(0.1 * lr[0]) for lr in lrs)


def test_first_step_is_never_zero():
    opt = _optimizer()
    LinearWarmupCosineAnnealingLR(opt, warmup_steps=1000, total_steps=5000)
    assert opt.param_groups[0]["lr"] == pytest.approx(1 / 1001)
    assert warmup_cosine_lr(0, 1.0, 0, 10) == 1.0  # no warmup: starts at base


def test_warm_restarts_exact_values():
    opt = _optimizer()
    sched = LinearWarmupCosineAnnealingWarmRestartsLR(
        opt, warmup_steps=2, total_steps=20, restart_period=4
    )
    head = [lr[0] for lr in _trace(sched, opt, 12)]
    cycle = [1.0, 0.5 * (1 + math.cos(math.pi / 4)), 0.5, 0.5 * (1 + math.cos(3 * math.pi / 4))]
    assert head == pytest.approx([1 / 3, 2 / 3, *cycle, *cycle, *cycle[:2]])


def test_state_dict_resume_continues_the_schedule():
    opt = _optimizer()
    sched = LinearWarmupCosineAnnealingLR(opt, warmup_steps=3, total_steps=10)
    _trace(sched, opt, 5)
    opt2 = _optimizer()
    sched2 = LinearWarmupCosineAnnealingLR(opt2, warmup_steps=3, total_steps=10)
    sched2.load_state_dict(sched.state_dict())
    sched.step()
    sched2.step()
    assert opt2.param_groups[0]["lr"] == pytest.approx(opt.param_groups[0]["lr"])


def test_settings_convert_epochs_to_steps():
    opt = _optimizer((1.0,))
    settings = OptimSettings(
        learning_rate=1.0, warmup_epochs=0.5, max_epochs=3, lr_scheduler="cosine"
    )
    sched = build_scheduler(opt, settings, steps_per_epoch=10)
    assert (sched.warmup_steps, sched.total_steps) == (5, 30)
    restarts = build_scheduler(opt, OptimSettings(lr_scheduler="cosine_restarts", max_epochs=8), 10)
    assert restarts.restart_period == 40  # default: max_epochs // 2 epochs
    assert build_scheduler(opt, OptimSettings(lr_scheduler="none"), 10) is None


def test_steps_per_epoch_from_trainer_estimate_or_settings():
    from trainer.contract.errors import ConfigError
    from trainer.optim.optimizer import optimizer_steps_per_epoch

    assert optimizer_steps_per_epoch(12.4, OptimSettings()) == 12
    assert optimizer_steps_per_epoch(float("inf"), OptimSettings(steps_per_epoch=7)) == 7
    assert optimizer_steps_per_epoch(None, OptimSettings(steps_per_epoch=7)) == 7
    with pytest.raises(ConfigError, match="--steps_per_epoch"):
        optimizer_steps_per_epoch(float("inf"), OptimSettings())
