"""``VideoDM``: train/val multi-view clip datasets and loaders for the video family.

The batching machinery is the V1 family's (``trainer.data.batching``): samplers that
shard themselves across ranks with equal batch counts (DDP never waits on a rank with
fewer batches), exact validation shards, and the resumable training loader whose position
is saved in every checkpoint, so a run preempted mid-epoch continues with the next batch.
Clips travel as uint8 (4x less host memory and transfer than float32); the conversion,
normalisation and augmentation run on the device after the transfer.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from trainer.configs.video_schema import AGGRESSIVE, VideoDatasetConfig
from trainer.data.batching import ResumableLoader, ShardedEvalSampler, ShardedTrainSampler
from trainer.video.data.augment import ClipAugmenter
from trainer.video.data.store import load_split
from trainer.video.data.synthetic import bayes_optimum

MEAN, STD = 0.45, 0.25  # of the synthetic pixels (0..1), close enough for every split


class ClipDataset(Dataset):
    """One split: ``{"video": (V, C, T, H, W) uint8, "labels": (tasks,) int64}`` per item."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.video = torch.from_numpy(np.ascontiguousarray(arrays["video"]))
        self.labels = torch.from_numpy(np.ascontiguousarray(arrays["labels"]))

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"video": self.video[index], "labels": self.labels[index]}


def augmentation_for(config: VideoDatasetConfig, mode: str) -> VideoDatasetConfig:
    """The config with its augmentation as ``mode`` asks: ``config``, ``aggressive``, ``none``."""
    if mode == "aggressive":
        return replace(config, augmentation=AGGRESSIVE)
    if mode == "none":
        return replace(config, augmentation=replace(config.augmentation, enabled=False))
    return config


class VideoDM(pl.LightningDataModule):
    def __init__(
        self,
        config: VideoDatasetConfig,
        batch_size: int = 16,
        num_workers: int = 0,
        seed: int = 0,
        steps_per_epoch: int | None = None,
        data_root: str | Path | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.batch_size, self.num_workers = batch_size, num_workers
        self.seed, self.steps_per_epoch = seed, steps_per_epoch
        self.data_root = Path(data_root) if data_root is not None else None
        self.train_dataset: ClipDataset | None = None
        self.val_dataset: ClipDataset | None = None
        self.train_loader: ResumableLoader | None = None
        self.augmenter = ClipAugmenter(config.augmentation, seed)
        self._resume_position: list[int] | None = None

    # ---- what the model and the report need to know -------------------------------------
    @property
    def task_names(self) -> list[str]:
        return [task.name for task in self.config.tasks]

    @property
    def vocabularies(self) -> dict[str, list[str]]:
        return {task.name: list(task.classes) for task in self.config.tasks}

    def class_counts(self) -> dict[str, list[int]]:
        """Observed training labels per class and task (for class-weighted losses)."""
        labels = self._require(self.train_dataset).labels.numpy()
        return {
            task.name: np.bincount(labels[:, i], minlength=len(task.classes)).tolist()
            for i, task in enumerate(self.config.tasks)
        }

    def optimum(self) -> dict[str, dict[str, float]]:
        """Bayes-optimal accuracy and balanced accuracy per task (synthetic ground truth)."""
        return {task.name: bayes_optimum(task) for task in self.config.tasks}

    # ---- Lightning ---------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.train_dataset is None:
            self.train_dataset = ClipDataset(load_split(self.config, "train", self.data_root)[0])
            self.val_dataset = ClipDataset(load_split(self.config, "val", self.data_root)[0])

    def rank_and_world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (0, 1) if trainer is None else (int(trainer.global_rank), int(trainer.world_size))

    def train_dataloader(self) -> DataLoader:
        rank, world = self.rank_and_world()
        dataset = self._require(self.train_dataset)
        sampler = ShardedTrainSampler(
            len(dataset), self.batch_size, rank, world, self.seed, self.steps_per_epoch
        )
        if self._resume_position is not None:
            epoch, batches_done, batch_size = self._resume_position
            sampler.set_epoch(epoch)
            sampler.resume_from(epoch, batches_done * batch_size)
            self._resume_position = None
        self.train_loader = ResumableLoader(
            dataset, batch_size=self.batch_size, sampler=sampler, num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0, drop_last=True,
        )  # fmt: skip
        return self.train_loader

    def val_dataloader(self) -> DataLoader:
        rank, world = self.rank_and_world()
        dataset = self._require(self.val_dataset)
        sampler = ShardedEvalSampler(len(dataset), rank, world)
        return DataLoader(
            dataset, batch_size=self.batch_size, sampler=sampler, num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )  # fmt: skip

    def on_after_batch_transfer(self, batch: dict[str, torch.Tensor], dataloader_idx: int):
        """uint8 → normalised float on the device; augmentation for training batches only."""
        video = (batch["video"].float() / 255.0 - MEAN) / STD
        if self.trainer is not None and self.trainer.training:
            video = self.augmenter(video)
        return {"video": video, "labels": batch["labels"]}

    def state_dict(self) -> dict[str, Any]:
        """The training loader's position in its epoch (as ``MultiDatasetDM``)."""
        if self.train_loader is None:
            return {}
        epoch, batches_done = self.train_loader.position
        return {"train_position": [epoch, batches_done, self.batch_size]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        position = state_dict.get("train_position")
        self._resume_position = [int(v) for v in position] if position else None

    def _require(self, dataset: ClipDataset | None) -> ClipDataset:
        if dataset is None:
            raise RuntimeError("VideoDM.setup() must run before asking for data")
        return dataset
