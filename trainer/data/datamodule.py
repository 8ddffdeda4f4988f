"""``MultiDatasetDM``: sessions of a dataset config as Lightning train/val loaders.

Missing synthetic sessions are generated on first use (``prepare_data`` and again in
``setup``, which every rank runs; generation is race-safe), so a pod with an empty data
volume can train; damaged ones are regenerated the same way (one line says so). Rank and
world size come from the attached trainer only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
from torch.utils.data import DataLoader, Sampler

from trainer.contract.errors import ConfigError
from trainer.data.augment import AugmentationConfig, BatchAugmenter
from trainer.data.batching import (
    ResumableLoader,
    ShardedEvalSampler,
    ShardedTrainSampler,
    group_collate,
)
from trainer.data.config import DatasetConfig, load_dataset_config
from trainer.data.curriculum import contrast_sampler_like
from trainer.data.datasets import (
    MultiSessionDataset,
    SessionDataset,
    SessionInfo,
    masked_mean_rates,
    split_by_trials,
)
from trainer.data.session_store import STIM_DTYPES, SessionArrays, ensure_stim_copy
from trainer.synthetic import generate_dataset


class MultiDatasetDM(pl.LightningDataModule):
    """Train/val data for every session of a dataset config (order = ``dataset_idx``)."""

    def __init__(
        self,
        dataset_config: DatasetConfig | str | Path,
        batch_size: int,
        dset_dtype: str = "uint8",
        num_workers: int = 0,
        seed: int = 0,
        steps_per_epoch: int | None = None,
        curriculum_warmup_steps: int | None = None,
    ) -> None:
        super().__init__()
        if dset_dtype not in STIM_DTYPES:
            raise ConfigError(
                "--dset_dtype", "dset_dtype", f"{dset_dtype!r}; allowed: {list(STIM_DTYPES)}"
            )
        if batch_size < 1:
            raise ConfigError("--batch_size", "batch_size", f"must be >= 1, got {batch_size}")
        if not isinstance(dataset_config, DatasetConfig):
            dataset_config = load_dataset_config(dataset_config)
        self.config = dataset_config
        self.batch_size = batch_size
        self.dset_dtype = dset_dtype
        self.num_workers = num_workers
        self.seed = seed
        self.steps_per_epoch = steps_per_epoch
        self.sessions_info: list[SessionInfo] = []
        self.train_dataset: MultiSessionDataset | None = None
        self.val_dataset: MultiSessionDataset | None = None
        self.train_sampler: Sampler[int] | None = None  # the one the train loader iterates
        self.train_loader: ResumableLoader | None = None
        self._resume_position: list[int] | None = None  # (epoch, batches done, batch size)
        # Contrast curriculum and augmentation: off unless configured.
        self.curriculum_warmup_steps = curriculum_warmup_steps
        self.augmentation = AugmentationConfig.from_dict(
            dataset_config.extra.get("augmentation"), dataset_config.source or "dataset config"
        )
        self.augmenter: BatchAugmenter | None = None

    def prepare_data(self) -> None:
        self._materialize()

    def _materialize(self) -> list[Path]:
        """Generate missing or damaged sessions; derive the stimulus copy in the storage dtype.

        Damage here means what headers and sizes show (truncated or missing files, a
        corrupt ``meta.json``): cheap enough for every rank at every start. Checksums read
        every byte, so only ``corejob-train generate`` compares them.
        """
        paths = generate_dataset(self.config, verify=False)
        for path in paths:
            ensure_stim_copy(path, self.dset_dtype)
        return paths

    def setup(self, stage: str | None = None) -> None:
        if self.train_dataset is not None:
            return
        train, val, infos = [], [], []
        for idx, (session, path) in enumerate(
            zip(self.config.sessions, self._materialize(), strict=True)
        ):
            arrays = SessionArrays(path, self.dset_dtype)
            split = split_by_trials(
                arrays.array("trial_ids"),
                self.config.n_lags,
                self.config.train_val_split,
                session.seed,
            )
            rates = masked_mean_rates(arrays.array("robs"), arrays.array("dfs"), split.train)
            train.append(SessionDataset(arrays, split.train, self.config.n_lags, idx))
            val.append(SessionDataset(arrays, split.val, self.config.n_lags, idx))
            infos.append(self._session_info(session.name, arrays, rates))
        self.train_dataset = MultiSessionDataset(train)
        self.val_dataset = MultiSessionDataset(val)
        self.sessions_info = infos

    def _session_info(self, name: str, arrays: SessionArrays, rates: np.ndarray) -> SessionInfo:
        meta = arrays.meta
        return SessionInfo(
            name=name,
            n_units=int(meta["n_units"]),
            n_lags=self.config.n_lags,
            image_shape=(int(meta["image_shape"][0]), int(meta["image_shape"][1])),
            behavior_dim=self.config.behavior_dim,
            mean_rates=tuple(float(r) for r in rates),
            stim_type=meta["stim_type"],
        )

    def rank_and_world(self) -> tuple[int, int]:
        """From the attached trainer (never the environment); ``(0, 1)`` when detached."""
        trainer = self.trainer
        if trainer is None:
            return 0, 1
        return int(trainer.global_rank), int(trainer.world_size)

    def _loader(self, dataset, sampler, loader_class: type[DataLoader] = DataLoader) -> DataLoader:
        return loader_class(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            collate_fn=group_collate,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def make_train_sampler(self, rank: int, world_size: int) -> Sampler[int]:
        """The training sampler; override (or replace) for e.g. a contrast curriculum.

        Whatever it returns must shard itself and give every rank the same length.
        """
        base = ShardedTrainSampler(
            len(self._require(self.train_dataset)),
            self.batch_size,
            rank=rank,
            world_size=world_size,
            seed=self.seed,
            steps_per_epoch=self.steps_per_epoch,
        )
        if not self.curriculum_warmup_steps:
            return base
        scores = self._require(self.train_dataset).contrast(self.config.n_lags)
        return contrast_sampler_like(base, scores, self.curriculum_warmup_steps)

    def train_dataloader(self) -> DataLoader:
        rank, world = self.rank_and_world()
        self.train_sampler = self.make_train_sampler(rank, world)
        sessions = len(self.config.sessions)
        self.augmenter = BatchAugmenter(
            [self.augmentation] * sessions, seed=self.seed + 7919 * rank
        )
        if self._resume_position is not None:
            epoch, batches_done, batch_size = self._resume_position
            self.train_sampler.set_epoch(epoch)
            self.train_sampler.resume_from(epoch, batches_done * batch_size)
            self._resume_position = None
        self.train_loader = self._loader(self.train_dataset, self.train_sampler, ResumableLoader)
        return self.train_loader

    def state_dict(self) -> dict[str, Any]:
        """The training loader's position in its epoch (saved in every checkpoint).

        Lightning restores a data module's state before it asks for the training loader
        (a loader's own state would arrive too late: the first loader is built while the
        optimizer's schedule is sized), so a mid-epoch resume starts where the run stopped.
        """
        if self.train_loader is None:
            return {}
        epoch, batches_done = self.train_loader.position
        return {"train_position": [epoch, batches_done, self.batch_size]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        position = state_dict.get("train_position")
        self._resume_position = [int(v) for v in position] if position else None

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """On-device augmentation of training batches only (``trainer.data.augment``)."""
        training = self.trainer is not None and self.trainer.training
        if self.augmenter is None or not training:
            return batch
        return self.augmenter(batch, training=True)

    def val_dataloader(self) -> DataLoader:
        rank, world = self.rank_and_world()
        sampler = ShardedEvalSampler(len(self._require(self.val_dataset)), rank, world)
        return self._loader(self.val_dataset, sampler)

    def _require(self, dataset: MultiSessionDataset | None) -> MultiSessionDataset:
        if dataset is None:
            raise RuntimeError("MultiDatasetDM.setup() must run before asking for loaders")
        return dataset
