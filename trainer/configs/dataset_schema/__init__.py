"""The dataset-config schema: VisionCore's dialect, importable without torch.

One schema for the trainer (load time) and the controller (before submit). ``fields``
names the parent and per-session keys, ``sections`` checks ``sampling``, ``keys_lags``,
``transforms`` and ``datafilters``, ``synthetic`` the generator block (presets), ``files``
reads and merges the YAML files, and ``ops`` holds the transform and datafilter vocabulary
(names, parameters).
"""

from trainer.configs.dataset_schema.fields import (
    PARENT_KEYS,
    SESSION_FILE_KEYS,
    SESSION_KEYS,
    SHARED_KEYS,
)
from trainer.configs.dataset_schema.files import (
    DatasetFiles,
    SessionEntry,
    deep_merge,
    load_dataset_files,
    read_yaml,
)

__all__ = [
    "PARENT_KEYS",
    "SESSION_FILE_KEYS",
    "SESSION_KEYS",
    "SHARED_KEYS",
    "DatasetFiles",
    "SessionEntry",
    "deep_merge",
    "load_dataset_files",
    "read_yaml",
]
