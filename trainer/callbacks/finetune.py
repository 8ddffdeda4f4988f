"""Frozen cores and gradual fine-tuning (the core itself is loaded by
``trainer.models.pretrained``).

- ``FinetuneCallback`` implements the freezing strategies:
  ``fixed`` (the core never trains: ``--freeze_vision``), ``progressive`` (core stages
  unfreeze one at a time on an epoch schedule, readout side first) and ``adaptive``
  (the next stage unfreezes when the validation metric plateaus). Unfrozen core stages
  take smaller steps (``unfrozen_lr_scale``): each optimizer update of their weights is
  scaled, which is the same as a lower learning rate for SGD and keeps Adam's direction.

Frozen stages keep ``requires_grad`` on under progressive/adaptive (DDP only synchronises
gradients of parameters that required grad when it wrapped the model); their gradients are
dropped before the optimizer step instead, so they stay bit-identical, and they sit in
eval mode so batch-norm statistics do not drift either.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytorch_lightning as pl
import torch
from torch import nn

from trainer.contract.errors import ConfigError

STRATEGIES = ("none", "fixed", "progressive", "adaptive")


def core_stages(core: nn.Module) -> list[str]:
    """Names of the core's top-level stages that hold parameters, input side first."""
    return [name for name, child in core.named_children() if any(True for _ in child.parameters())]


def freeze_modules(modules: list[nn.Module]) -> None:
    """Permanently freeze: no gradients, eval mode (for ``fixed``)."""
    for module in modules:
        module.requires_grad_(False)
        module.eval()


@dataclass(frozen=True)
class FinetuneSettings:
    strategy: str = "none"
    unfreeze_start_epoch: int = 1
    unfreeze_every: int = 1
    unfrozen_lr_scale: float = 0.1
    patience: int = 2
    min_delta: float = 1e-3
    monitor: str = "val_bps_overall"

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError("--finetune_strategy", self.strategy, f"must be one of {STRATEGIES}")
        if not 0.0 < self.unfrozen_lr_scale <= 1.0:
            raise ConfigError(
                "--unfrozen_lr_scale", str(self.unfrozen_lr_scale), "must be in (0, 1]"
            )
        if self.unfreeze_every < 1 or self.patience < 1:
            raise ConfigError("--unfreeze_every/--finetune_patience", "value", "must be >= 1")


def settings_from_args(
    args: argparse.Namespace, monitor: str = "val_bps_overall"
) -> FinetuneSettings:
    """``FinetuneSettings`` from the CLI flags (``--freeze_vision`` means ``fixed``);
    ``monitor``: the family's metric the adaptive strategy watches."""
    strategy = getattr(args, "finetune_strategy", None) or (
        "fixed" if getattr(args, "freeze_vision", False) else "none"
    )
    return FinetuneSettings(
        strategy=strategy,
        unfreeze_start_epoch=args.unfreeze_start_epoch,
        unfreeze_every=args.unfreeze_every,
        unfrozen_lr_scale=args.unfrozen_lr_scale,
        patience=args.finetune_patience,
        monitor=monitor,
    )


def progressive_unfrozen_count(settings: FinetuneSettings, epoch: int, n_stages: int) -> int:
    """How many core stages (readout side first) are trainable during ``epoch``."""
    if epoch < settings.unfreeze_start_epoch:
        return 0
    return min(n_stages, 1 + (epoch - settings.unfreeze_start_epoch) // settings.unfreeze_every)


def find_core(pl_module: nn.Module) -> nn.Module:
    """The shared core (``pl_module.model.core``): the V1 vision core, the video family's
    ResNet3D backbone."""
    core = getattr(getattr(pl_module, "model", None), "core", None)
    if not isinstance(core, nn.Module):
        raise RuntimeError("fine-tuning needs a model with a vision core at .model.core")
    return core


class FinetuneCallback(pl.Callback):
    """Applies a freezing strategy (see module docstring) during ``fit``."""

    def __init__(self, settings: FinetuneSettings):
        self.settings = settings
        self.unfrozen = 0  # stages trainable, counted from the readout side
        self.best: float | None = None
        self.stale_epochs = 0
        self._snapshot: list[tuple[torch.Tensor, torch.Tensor]] = []

    def _stages(self, pl_module: pl.LightningModule) -> list[nn.Module]:
        core = find_core(pl_module)
        return [getattr(core, name) for name in core_stages(core)]

    def _frozen_and_open(self, pl_module) -> tuple[list[nn.Module], list[nn.Module]]:
        stages = self._stages(pl_module)
        cut = len(stages) - self.unfrozen
        return stages[:cut], stages[cut:]

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.settings.strategy == "fixed":
            freeze_modules(self._stages(pl_module))

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        strategy = self.settings.strategy
        if strategy == "progressive":
            n = len(self._stages(pl_module))
            count = progressive_unfrozen_count(self.settings, trainer.current_epoch, n)
            if count != self.unfrozen:
                self.unfrozen = count
                print(
                    f"[finetune] epoch {trainer.current_epoch}: {count}/{n} core stages trainable"
                )
        self._set_modes(pl_module)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        self._set_modes(pl_module)  # Lightning may have put the whole model back in train()

    def _set_modes(self, pl_module: pl.LightningModule) -> None:
        if self.settings.strategy == "none":
            return
        frozen, _ = self._frozen_and_open(pl_module)
        for module in frozen:
            module.eval()

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if self.settings.strategy in ("none", "fixed"):
            return
        frozen, open_ = self._frozen_and_open(pl_module)
        for module in frozen:
            for p in module.parameters():
                p.grad = None  # the optimizer skips it: no update, no weight decay
        scale = self.settings.unfrozen_lr_scale
        self._snapshot = []
        if scale < 1.0:
            self._snapshot = [
                (p, p.detach().clone()) for m in open_ for p in m.parameters() if p.grad is not None
            ]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        scale = self.settings.unfrozen_lr_scale
        with torch.no_grad():
            for p, before in self._snapshot:
                p.copy_(before + scale * (p - before))
        self._snapshot = []

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.settings.strategy != "adaptive" or trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.settings.monitor)
        if value is None:
            return
        value = float(value)
        if self.best is None or value > self.best + self.settings.min_delta:
            self.best, self.stale_epochs = value, 0
            return
        self.stale_epochs += 1
        n = len(self._stages(pl_module))
        if self.stale_epochs >= self.settings.patience and self.unfrozen < n:
            self.unfrozen += 1
            self.stale_epochs = 0
            print(f"[finetune] {self.settings.monitor} plateaued: {self.unfrozen}/{n} stages open")

    def state_dict(self) -> dict:
        return {"unfrozen": self.unfrozen, "best": self.best, "stale_epochs": self.stale_epochs}

    def load_state_dict(self, state_dict: dict) -> None:
        self.unfrozen = int(state_dict.get("unfrozen", 0))
        self.best = state_dict.get("best")
        self.stale_epochs = int(state_dict.get("stale_epochs", 0))
