"""``MultiDatasetDM``: sessions of a dataset config as Lightning train/val loaders.

Each session's raw recording is found (a synthetic one is generated on first use, race-safe,
so a pod with an empty data volume can train; an imported one must be under the data root)
and its training arrays derived once by the config's transforms and cached next to it
(``trainer.data.derived``); ``prepare_data`` and ``setup`` (every rank) both make sure of
it. Samples carry every key of the config's ``keys_lags`` in VisionCore's lag order.
Rank and world size come from the attached trainer only.

Batches leave the loader in the storage dtype (uint8 stimulus windows when the stim ops
are affine) and become float32 on the device (``on_after_batch_transfer``); when the
sessions fit on the device (``data_on_device``) they are held there and a batch is only
(session, bin) indices (``trainer.data.transfer``). Either way the model sees the same
float32 batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from trainer.contract.errors import ConfigError
from trainer.data.augment import AugmentationConfig, BatchAugmenter
from trainer.data.batching import (
    ResumableLoader,
    ShardedEvalSampler,
    ShardedTrainSampler,
    keep_groups,
)
from trainer.data.config import DatasetConfig, load_dataset_config
from trainer.data.curriculum import contrast_sampler_like
from trainer.data.datasets import (
    MultiSessionDataset,
    SessionInfo,
    masked_mean_rates,
    session_info,
)
from trainer.data.derived.cache import DerivedSession
from trainer.data.derived.samples import LaggedSessionDataset, max_lag, sample_bins, split_samples
from trainer.data.derived.storage import STIM_DTYPES, StimCodec, codec_of
from trainer.data.sessions import derived_session_folders
from trainer.data.transfer import (
    PLACEMENT_MODES,
    FrameIndexDataset,
    Placement,
    ResidentSessions,
    decode_groups,
    device_capacity,
    move_groups,
    plan_placement,
    resident_bytes,
)
from trainer.data.transfer.placement import DEFAULT_SHARE


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
        data_on_device: str = "auto",
        data_on_device_share: float = DEFAULT_SHARE,
        derived_dir: str | Path | None = None,
    ) -> None:
        super().__init__()
        if data_on_device not in PLACEMENT_MODES:
            raise ConfigError(
                "--data_on_device",
                "data_on_device",
                f"{data_on_device!r}; allowed: {list(PLACEMENT_MODES)}",
            )
        if not 0.0 < data_on_device_share <= 1.0:
            raise ConfigError(
                "--data_on_device_share",
                "data_on_device_share",
                f"must be a fraction in (0, 1], got {data_on_device_share}",
            )
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
        self.derived_dir = Path(derived_dir) if derived_dir else None
        self._folders: list[Path] | None = None  # the sessions' derived arrays, once known
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
        self.augmentation = [
            AugmentationConfig.from_dict(s.fields.get("augmentation"), s.source)
            for s in dataset_config.sessions
        ]
        self.augmenter: BatchAugmenter | None = None
        # Where batches are built: decided once, when a trainer (and so a device) is attached.
        self.data_on_device = data_on_device
        self.data_on_device_share = data_on_device_share
        self.codecs: list[StimCodec] = []
        self.placement: Placement | None = None
        self.resident: ResidentSessions | None = None

    def prepare_data(self) -> None:
        self._materialize()

    def _materialize(self) -> list[Path]:
        """Every session's derived arrays, generating or deriving what is missing or damaged
        (once per process: ``prepare_data`` and ``setup`` both need them on rank 0).

        Damage here means what headers and sizes show (truncated or missing files, a
        corrupt manifest): cheap enough for every rank at every start. Checksums read
        every byte, so only ``corejob-train generate`` compares them.
        """
        if self._folders is None:
            self._folders = derived_session_folders(self.config, self.dset_dtype, self.derived_dir)
        return self._folders

    def setup(self, stage: str | None = None) -> None:
        if self.train_dataset is None:
            self._build_datasets()
        if self.trainer is not None and self.placement is None:
            self.place_sessions(self.root_device())

    def _build_datasets(self) -> None:
        train, val, infos = [], [], []
        for idx, (session, folder) in enumerate(
            zip(self.config.sessions, self._materialize(), strict=True)
        ):
            derived = DerivedSession(folder)
            fields = session.fields
            keys_lags = fields["keys_lags"]
            bins = sample_bins(derived.array("trial_ids"), derived.array("dfs"), max_lag(keys_lags))
            train_bins, val_bins = split_samples(
                derived, bins, fields["train_val_split"], fields["seed"]
            )
            if train_bins.size == 0 or val_bins.size == 0:
                raise ConfigError(
                    session.source,
                    "train_val_split",
                    f"session {session.name} has {train_bins.size} training and "
                    f"{val_bins.size} validation samples: it needs more trials or a "
                    "split that leaves some on each side",
                )
            rates = masked_mean_rates(derived.array("robs"), derived.array("dfs"), train_bins)
            train.append(LaggedSessionDataset(derived, train_bins, keys_lags, idx))
            val.append(LaggedSessionDataset(derived, val_bins, keys_lags, idx))
            infos.append(session_info(session.name, derived, keys_lags, rates))
            self.codecs.append(codec_of(derived.meta.get("stim")))
        self.train_dataset = MultiSessionDataset(train)
        self.val_dataset = MultiSessionDataset(val)
        self.sessions_info = infos

    def place_sessions(self, device: torch.device, capacity_bytes: int | None = None) -> Placement:
        """Decide (once) whether the sessions live on ``device``; load them there if so.

        ``capacity_bytes``: the device's memory (default: asked from the device; the CPU
        has none, so ``auto`` keeps the host path there). Rank 0 logs the decision once.
        """
        if self.placement is not None:
            return self.placement
        datasets = self._require(self.train_dataset).datasets
        sessions, keys_lags = [d.arrays for d in datasets], [d.keys_lags for d in datasets]
        capacity = device_capacity(device) if capacity_bytes is None else capacity_bytes
        placement = plan_placement(
            self.data_on_device,
            device,
            resident_bytes(sessions, keys_lags),
            capacity,
            self.data_on_device_share,
        )
        if placement.resident:
            self.resident = ResidentSessions(sessions, keys_lags, device)
        self.placement = placement
        if self.rank_and_world()[0] == 0:
            print(f"data: {placement.reason}", flush=True)
        return placement

    def root_device(self) -> torch.device:
        """The attached trainer's device (the CPU when detached)."""
        strategy = getattr(self.trainer, "strategy", None)
        return strategy.root_device if strategy is not None else torch.device("cpu")

    def rank_and_world(self) -> tuple[int, int]:
        """From the attached trainer (never the environment); ``(0, 1)`` when detached."""
        trainer = self.trainer
        if trainer is None:
            return 0, 1
        return int(trainer.global_rank), int(trainer.world_size)

    def _loader(self, dataset, sampler, loader_class: type[DataLoader] = DataLoader) -> DataLoader:
        """Host path: windows read by ``num_workers`` workers, pinned for a CUDA device.
        Resident: index groups built in this process (nothing to read, nothing to pin)."""
        source: Dataset = dataset
        workers, pin = self.num_workers, self.root_device().type == "cuda"
        if self.resident is not None:
            source, workers, pin = FrameIndexDataset(dataset), 0, False
        return loader_class(
            source,
            batch_size=self.batch_size,
            sampler=sampler,
            collate_fn=keep_groups,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=pin,
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
        scores = self._require(self.train_dataset).contrast()
        return contrast_sampler_like(base, scores, self.curriculum_warmup_steps)

    def train_dataloader(self) -> DataLoader:
        rank, world = self.rank_and_world()
        self.train_sampler = self.make_train_sampler(rank, world)
        self.augmenter = BatchAugmenter(self.augmentation, seed=self.seed + 7919 * rank)
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

    def transfer_batch_to_device(self, batch, device: torch.device, dataloader_idx: int):
        """Storage bytes (or index groups) to the device, ``non_blocking``."""
        return move_groups(batch, device)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """On the device: gather (resident sessions), decode to float32, then augment
        training batches only (``trainer.data.augment``)."""
        batch = self.materialize(batch)
        training = self.trainer is not None and self.trainer.training
        if self.augmenter is None or not training:
            return batch
        return self.augmenter(batch, training=True)

    def materialize(self, batch: list[dict]) -> list[dict]:
        """A loader batch already on its device as the model's float32 batch."""
        if batch and "frames" in batch[0]:
            if self.resident is None:
                raise RuntimeError("an index batch, but no sessions are held on the device")
            batch = self.resident.gather(batch)
        return decode_groups(batch, self.codecs)

    def device_batch(self, batch: list[dict], device: torch.device | None = None) -> list[dict]:
        """What the training step receives for a loader batch, outside Lightning (raw loops,
        benchmarks, tests): moved, gathered and decoded, not augmented."""
        target = device or (self.resident.device if self.resident else torch.device("cpu"))
        return self.materialize(move_groups(batch, target))

    def val_dataloader(self) -> DataLoader:
        rank, world = self.rank_and_world()
        sampler = ShardedEvalSampler(len(self._require(self.val_dataset)), rank, world)
        return self._loader(self.val_dataset, sampler)

    def _require(self, dataset: MultiSessionDataset | None) -> MultiSessionDataset:
        if dataset is None:
            raise RuntimeError("MultiDatasetDM.setup() must run before asking for loaders")
        return dataset
