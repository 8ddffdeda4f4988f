"""Data side of the trainer: dataset configs, sessions on disk, datasets and the data module."""

from trainer.data.batching import ShardedEvalSampler, ShardedTrainSampler, group_collate
from trainer.data.config import DatasetConfig, SessionConfig, load_dataset_config
from trainer.data.datamodule import MultiDatasetDM

__all__ = [
    "DatasetConfig",
    "MultiDatasetDM",
    "SessionConfig",
    "ShardedEvalSampler",
    "ShardedTrainSampler",
    "group_collate",
    "load_dataset_config",
]
