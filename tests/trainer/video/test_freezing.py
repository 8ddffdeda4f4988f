"""Freezing strategies on the video model change exactly the parameters they should.

The strategies are the shared ones (``trainer.callbacks.finetune``) applied to the
ResNet3D backbone's stages (stem, stage1..3); heads always train.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch

from trainer.callbacks.finetune import FinetuneCallback, FinetuneSettings
from trainer.video.data.datamodule import VideoDM
from trainer.video.module import MultiViewVideoModel

STAGES = ("core.stem", "core.stage1", "core.stage2", "core.stage3")


class EpochSnapshots(pl.Callback):
    """The model's parameters at the start and at the end of every training epoch."""

    def __init__(self) -> None:
        self.snapshots: list[dict[str, torch.Tensor]] = []

    def _take(self, pl_module) -> None:
        self.snapshots.append(
            {n: p.detach().clone() for n, p in pl_module.model.named_parameters()}
        )

    def on_train_start(self, trainer, pl_module) -> None:
        self._take(pl_module)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._take(pl_module)


def changed_parts(before: dict, after: dict) -> set[str]:
    """``heads`` or a backbone stage, for every parameter that moved."""
    parts = set()
    for name, value in after.items():
        if not torch.equal(value, before[name]):
            stage = next((s for s in STAGES if name.startswith(s + ".")), None)
            parts.add(stage or name.split(".")[0])
    return parts


def train_epochs(config, dataset, settings: FinetuneSettings, epochs: int) -> EpochSnapshots:
    pl.seed_everything(0, verbose=False)
    datamodule = VideoDM(dataset, batch_size=8, steps_per_epoch=2)
    datamodule.setup("fit")
    model = MultiViewVideoModel(
        config, datamodule.vocabularies, datamodule.class_counts(),
        {"learning_rate": 1e-2, "lr_scheduler": "none", "max_epochs": epochs},
    )  # fmt: skip
    snapshots = EpochSnapshots()
    trainer = pl.Trainer(
        max_epochs=epochs, accelerator="cpu", limit_val_batches=0, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=[FinetuneCallback(settings), snapshots], use_distributed_sampler=False,
    )  # fmt: skip
    trainer.fit(model, datamodule=datamodule)
    return snapshots


def test_gradual_finetuning_opens_backbone_stages_from_the_head_side(
    small_model_config, micro_dataset
):
    # --gradual_finetuning --frozen_epochs 1: epoch 0 heads only, then one stage per epoch
    settings = FinetuneSettings("progressive", unfreeze_start_epoch=1, unfrozen_lr_scale=0.5)
    shots = train_epochs(small_model_config, micro_dataset, settings, epochs=3).snapshots
    assert changed_parts(shots[0], shots[1]) == {"heads"}
    assert changed_parts(shots[1], shots[2]) == {"heads", "core.stage3"}
    assert changed_parts(shots[2], shots[3]) == {"heads", "core.stage3", "core.stage2"}


def test_fixed_strategy_never_moves_the_backbone(small_model_config, micro_dataset):
    shots = train_epochs(small_model_config, micro_dataset, FinetuneSettings("fixed"), 2)
    assert changed_parts(shots.snapshots[0], shots.snapshots[-1]) == {"heads"}
