"""The on-disk cache of synthetic clips: generated once per (config, generator version).

``DATA_ROOT/video/<name>-<digest>/<split>.npz``: the digest covers every field that
changes the bytes, so editing a config makes a new cache instead of serving stale clips.
Every rank may generate: the file is written to a temporary name and renamed, so readers
see a whole file or none, and concurrent writers of identical bytes are harmless. A
damaged file (a crash mid-write cannot make one, a bad disk can) is regenerated.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from trainer.configs.video_schema import VideoDatasetConfig
from trainer.video.data.synthetic import GENERATOR_VERSION, generate_split

SPLITS = ("train", "val")
KEYS = ("video", "labels", "true_labels")


def cache_digest(config: VideoDatasetConfig) -> str:
    """12 hex digits over what the generator reads (augmentation and paths excluded)."""
    fields = dataclasses.asdict(config)
    fields.pop("augmentation"), fields.pop("data_root"), fields.pop("name")
    fields["generator_version"] = GENERATOR_VERSION
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]


def cache_dir(config: VideoDatasetConfig, data_root: Path) -> Path:
    return Path(data_root) / "video" / f"{config.name}-{cache_digest(config)}"


def _read(path: Path) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path) as data:
            arrays = {key: data[key] for key in KEYS}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return None
    return arrays


def _write(path: Path, arrays: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_split(
    config: VideoDatasetConfig, split: str, data_root: Path | None
) -> tuple[dict[str, np.ndarray], bool]:
    """A split's arrays (from the cache, else generated and cached) and whether they were
    generated now. ``data_root`` None: generate in memory, cache nothing."""
    if data_root is None:
        return generate_split(config, split), True
    path = cache_dir(config, data_root) / f"{split}.npz"
    if path.is_file():
        arrays = _read(path)
        if arrays is not None:
            return arrays, False
        print(f"{path}: unreadable cache, regenerating", flush=True)
    arrays = generate_split(config, split)
    _write(path, arrays)
    return arrays, True
