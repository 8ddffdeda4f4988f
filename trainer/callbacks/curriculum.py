"""Drives the contrast curriculum: the global step goes into the training sampler.

The sampler (``trainer.data.curriculum``) owns the schedule; this callback only feeds it
the step and prints the per-epoch evidence that the curriculum is really active on every
rank (a curriculum that silently does nothing under DDP was VisionCore's failure mode).
"""

from __future__ import annotations

import pytorch_lightning as pl

from trainer.data.curriculum import ContrastWeightedSampler, curriculum_strength

CURRICULUM_LINE_PREFIX = "COREJOB_CURRICULUM "


def find_contrast_sampler(trainer: pl.Trainer) -> ContrastWeightedSampler | None:
    """The sampler the training loader really iterates, wherever it sits."""
    candidates = []
    loaders = trainer.train_dataloader
    if loaders is None and trainer.datamodule is not None:
        candidates.append(getattr(trainer.datamodule, "train_sampler", None))
    loaders = loaders if isinstance(loaders, list | tuple) else [loaders]
    for loader in loaders:
        candidates.append(getattr(loader, "sampler", None))
        batch_sampler = getattr(loader, "batch_sampler", None)
        candidates += [batch_sampler, getattr(batch_sampler, "sampler", None)]
    for obj in candidates:
        if isinstance(obj, ContrastWeightedSampler):
            return obj
    return None


class CurriculumCallback(pl.Callback):
    """Pushes the global step into the training sampler before every training batch.

    Fails at train start if the loader's sampler is not a ``ContrastWeightedSampler``
    (e.g. Lightning replaced it): a curriculum that silently does nothing is a bug. Every
    rank prints one ``COREJOB_CURRICULUM`` line per epoch: the steps its sampler saw and
    the mean contrast it drew next to the scheduled one (the proof in pod logs).
    """

    def __init__(self) -> None:
        self.sampler: ContrastWeightedSampler | None = None

    def _locate(self, trainer: pl.Trainer) -> ContrastWeightedSampler:
        sampler = find_contrast_sampler(trainer)
        if sampler is None:
            raise RuntimeError(
                "curriculum is on but the training loader does not iterate a "
                "ContrastWeightedSampler (was it replaced? set use_distributed_sampler=False)"
            )
        return sampler

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.sampler = self._locate(trainer)
        self.sampler.set_step(trainer.global_step)

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int
    ) -> None:
        if self.sampler is None:
            self.sampler = self._locate(trainer)
        self.sampler.set_step(trainer.global_step)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.sampler is None:
            return
        stats = self.sampler.epoch_summary()
        steps = self.sampler.steps_seen
        span = f"{steps[0]}..{steps[-1]}" if steps else "none"
        numbers = " ".join(f"{k}={v:.4f}" for k, v in stats.items())
        a = curriculum_strength(trainer.global_step, self.sampler.warmup_steps)
        print(
            f"{CURRICULUM_LINE_PREFIX}rank={trainer.global_rank} epoch={trainer.current_epoch} "
            f"steps={span} n_steps={len(steps)} strength={a:.3f} {numbers}",
            flush=True,
        )
        pl_module.log("curriculum_mean_contrast", stats["mean_sampled"], rank_zero_only=True)
