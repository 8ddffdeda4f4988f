"""``MultiViewVideoModel``: the LightningModule of the video family.

Training: the multi-task loss (``trainer.video.losses``) of every head. Validation:
confusion matrices all-reduced once, so ``val_macro_acc`` and every per-task accuracy
and F1 are exact and identical on every rank (``trainer.video.metrics``). The optimizer
and schedule are the shared ones (``trainer.optim``: AdamW with the backbone at
``core_lr_scale`` x LR, warmup + cosine). Checkpoints embed what rebuilds the model
(configs, vocabularies, loss settings), like the V1 family's.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import pytorch_lightning as pl
import torch

from trainer import __version__
from trainer.configs.video_schema import VideoModelConfig
from trainer.optim.optimizer import (
    OptimSettings,
    build_optimizer,
    build_scheduler,
    optimizer_steps_per_epoch,
)
from trainer.video.losses.classification import MultiTaskLoss
from trainer.video.metrics.confusion import HEADLINE, ConfusionMatrices
from trainer.video.model.multiview import MultiViewNet

CHECKPOINT_KEY = "corejob"


@dataclasses.dataclass(frozen=True)
class LossSettings:
    """``--loss_function`` and its knobs."""

    kind: str = "ce"
    focal_gamma: float = 2.0
    focal_alpha: bool = False
    class_weight_max: float = 10.0
    task_weights: dict[str, float] | None = None


class MultiViewVideoModel(pl.LightningModule):
    """Shared ResNet3D (``self.model.core``) + fusion + per-task heads."""

    def __init__(
        self,
        model_config: dict[str, Any],
        vocabularies: Mapping[str, Sequence[str]],
        class_counts: Mapping[str, Sequence[int]],
        optim: OptimSettings | dict[str, Any] | None = None,
        loss: LossSettings | dict[str, Any] | None = None,
        dataset_config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.model_config = copy.deepcopy(dict(model_config))
        self.vocabularies = {task: list(names) for task, names in vocabularies.items()}
        self.class_counts = {task: list(c) for task, c in class_counts.items()}
        self.optim = optim if isinstance(optim, OptimSettings) else OptimSettings(**(optim or {}))
        self.loss_settings = (
            loss if isinstance(loss, LossSettings) else LossSettings(**(loss or {}))
        )
        self.dataset_config = copy.deepcopy(dataset_config)
        spec = VideoModelConfig.from_dict(self.model_config, self.model_config.get("name", "model"))
        self.model = MultiViewNet(spec, self.vocabularies)
        s = self.loss_settings
        self.criterion = MultiTaskLoss(
            s.kind, self.class_counts, s.task_weights, s.focal_gamma, s.class_weight_max,
            s.focal_alpha,
        )  # fmt: skip
        self._val: ConfusionMatrices | None = None
        self.save_hyperparameters(self._embedded_config())

    def forward(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model(video)

    def compile(self, **options: Any) -> None:  # type: ignore[override]
        """``--compile``: ``torch.compile`` the network that training and validation call
        (``self.model``). ``nn.Module.compile`` on this module would compile its
        ``forward``, which ``training_step`` never calls; ``options`` are torch.compile's."""
        self.model.compile(**options)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, per_task = self.criterion(self.model(batch["video"]), batch["labels"])
        n = int(batch["labels"].shape[0])
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=n)
        for task, value in per_task.items():
            self.log(f"train_loss/{task}", value, on_step=False, on_epoch=True, batch_size=n)
        return loss

    def on_validation_epoch_start(self) -> None:
        sizes = {task: len(names) for task, names in self.vocabularies.items()}
        self._val = ConfusionMatrices(sizes, device=self.device)
        self._val_loss = torch.zeros(2, dtype=torch.float64, device=self.device)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        assert self._val is not None
        logits = self.model(batch["video"])
        loss, _ = self.criterion(logits, batch["labels"])
        n = batch["labels"].shape[0]
        self._val_loss += torch.stack([loss.detach().double() * n, loss.new_tensor(n).double()])
        for i, task in enumerate(self.vocabularies):
            self._val.add(task, logits[task].detach(), batch["labels"][:, i])

    def on_validation_epoch_end(self) -> None:
        assert self._val is not None
        world = self.trainer.world_size if self._trainer is not None else 1
        reduce = (lambda t: self.trainer.strategy.reduce(t, reduce_op="sum")) if world > 1 else None
        self._val.reduce(reduce)
        loss = reduce(self._val_loss) if reduce else self._val_loss
        metrics = {**self._val.summary(), "val_loss": float(loss[0] / loss[1].clamp_min(1))}
        for key, value in metrics.items():
            # identical on all ranks (from all-reduced counts): no further sync
            self.log(key, value, prog_bar=key == HEADLINE, sync_dist=False, rank_zero_only=False)

    def configure_optimizers(self):
        optimizer = build_optimizer(self.model, self.optim, (), self.model_config.get("name", ""))
        per_epoch = None
        if self._trainer is not None:
            epochs = self.trainer.max_epochs if (self.trainer.max_epochs or 0) > 0 else None
            per_epoch = self.trainer.estimated_stepping_batches / (epochs or self.optim.max_epochs)
        scheduler = build_scheduler(
            optimizer, self.optim, optimizer_steps_per_epoch(per_epoch, self.optim)
        )
        if scheduler is None:
            return optimizer
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1},
        }

    def _embedded_config(self) -> dict[str, Any]:
        return {
            "model_config": copy.deepcopy(self.model_config),
            "vocabularies": copy.deepcopy(self.vocabularies),
            "class_counts": copy.deepcopy(self.class_counts),
            "optim": dataclasses.asdict(self.optim),
            "loss": dataclasses.asdict(self.loss_settings),
            "dataset_config": copy.deepcopy(self.dataset_config),
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = {
            "version": __version__,
            "family": "video",
            **self._embedded_config(),
        }

    @classmethod
    def load_from_corejob_checkpoint(cls, path: str, map_location: str = "cpu"):
        """Rebuild from a checkpoint alone (no YAML, no data)."""
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
        meta = checkpoint[CHECKPOINT_KEY]
        model = cls(
            meta["model_config"], meta["vocabularies"], meta["class_counts"],
            OptimSettings(**meta["optim"]), LossSettings(**meta["loss"]), meta["dataset_config"],
        )  # fmt: skip
        model.load_state_dict(checkpoint["state_dict"])
        return model
