"""Dataset configs (VisionCore's dialect) as the trainer uses them: sessions and where they live.

The files are read and validated by the torch-free schema
(``trainer.configs.dataset_schema``), which the controller also runs before submitting.
This module adds what needs the trainer: a session's ``synthetic:`` block resolved against
the generator's presets (a typo fails at load, naming file and key), and the folder of each
session's raw recording: a synthetic one under ``<data_root>/synthetic_raw/``, generated on
first use; any other at ``<data_root>/<session>/``, imported there by
``corejob-train import-visioncore``.
"""

from __future__ import annotations

import copy
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer.configs import DATASETS, config_dir
from trainer.configs.dataset_schema import load_dataset_files
from trainer.configs.dataset_schema.synthetic import check_synthetic_block
from trainer.contract.errors import ConfigError
from trainer.data.augment import AugmentationConfig
from trainer.synthetic.raw import RawSessionSpec, raw_session_dir

CONFIG_DIR = config_dir(DATASETS)
DEFAULT_DATA_ROOT = "data"
# Fields of a ``synthetic:`` block besides the generator's own (``presets.py``).


@dataclass(frozen=True)
class SessionConfig:
    """One session after the merge: its name, validated fields and the file they came from."""

    name: str
    fields: dict[str, Any]
    source: str = ""

    @property
    def synthetic(self) -> dict[str, Any] | None:
        return self.fields.get("synthetic")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "fields": copy.deepcopy(self.fields), "source": self.source}


@dataclass(frozen=True)
class DatasetConfig:
    """A resolved dataset config; ``to_dict()``/``from_dict()`` round-trip via checkpoints."""

    name: str
    sessions: list[SessionConfig]
    data_root: Path
    source: str = ""
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def synthetic_spec(self, session: SessionConfig) -> RawSessionSpec:
        return synthetic_spec(session)

    def raw_session_dir(self, session: SessionConfig) -> Path:
        """Where a session's raw recording is (or will be generated, if synthetic)."""
        if session.synthetic is not None:
            return raw_session_dir(synthetic_spec(session), self.data_root)
        return self.data_root / session.name

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "description": self.description,
            "data_root": str(self.data_root),
            "sessions": [s.to_dict() for s in self.sessions],
            **copy.deepcopy(self.extra),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], data_root: str | Path | None = None) -> DatasetConfig:
        """Rebuild from ``to_dict()`` output (e.g. embedded in a checkpoint)."""
        if "sessions" not in d or any("fields" not in s for s in d["sessions"]):
            raise ConfigError(
                "<checkpoint>",
                "dataset_config",
                "written by a corejob before VisionCore's dataset dialect; pass "
                "--dataset_configs_path to name the dataset",
            )
        sessions = [
            SessionConfig(s["name"], s["fields"], s.get("source", "")) for s in d["sessions"]
        ]
        root = Path(data_root) if data_root is not None else Path(d["data_root"])
        return cls(
            name=d["name"],
            sessions=sessions,
            data_root=root.expanduser().resolve(),
            source=d.get("source", ""),
            description=d.get("description", ""),
            extra={k: d[k] for k in ("augmentation",) if k in d},
        )


def derived_seed(seed: int, name: str) -> int:
    """A per-session seed that differs between sessions but is stable across runs."""
    return (int(seed) * 1_000_003 + zlib.crc32(name.encode())) % (2**31 - 1)


def synthetic_spec(session: SessionConfig) -> RawSessionSpec:
    """The generator spec of a session's ``synthetic:`` block (``ConfigError`` naming the key).

    ``n_units`` (required), ``seed`` (default: from the config's seed and the session's
    name) and ``n_lags`` (the neurons' kernel length in display frames; default: the
    number of stim lags) are the session's; every other key is a generator field.
    """
    fields, file = session.fields, session.source
    block = dict(session.synthetic or {})
    params = check_synthetic_block(block, file)  # the schema's check (submit runs it too)
    seed = block.get("seed", derived_seed(fields["seed"], session.name))
    stim_lags = fields["keys_lags"].get("stim", 0)
    n_lags = block.get("n_lags", len(stim_lags) if isinstance(stim_lags, list) else 1)
    sampling = fields.get("sampling") or {}
    rates = {"source_rate": sampling["source_rate"]} if sampling else {}
    try:
        return RawSessionSpec(
            session.name, block["n_units"], seed, tuple(fields["types"]), max(n_lags, 1), params,
            **rates,
        )  # fmt: skip
    except ValueError as error:
        key, message = error.args if len(error.args) == 2 else ("synthetic", str(error))
        raise ConfigError(file, f"synthetic.{key}", message) from None


def load_dataset_config(
    name_or_path: str | Path,
    data_root: str | Path | None = None,
    max_datasets: int | None = None,
) -> DatasetConfig:
    """Load, merge and validate a dataset config (``trainer.configs.dataset_schema``)."""
    files = load_dataset_files(name_or_path, max_datasets)
    source = str(files.path)
    sessions = [SessionConfig(s.name, s.fields, str(s.file)) for s in files.sessions]
    for session in sessions:
        if session.synthetic is not None:
            synthetic_spec(session)
        AugmentationConfig.from_dict(session.fields.get("augmentation"), session.source)
    parent = files.parent
    root = data_root if data_root is not None else parent.get("data_root") or DEFAULT_DATA_ROOT
    extra = (
        {"augmentation": copy.deepcopy(parent["augmentation"])} if "augmentation" in parent else {}
    )
    return DatasetConfig(
        name=files.path.stem,
        sessions=sessions,
        data_root=Path(root).expanduser().resolve(),
        source=source,
        description=files.description,
        extra=extra,
    )
