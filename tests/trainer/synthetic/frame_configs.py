"""Old-style (120 Hz, one stimulus type per session) configs for ``trainer.synthetic``'s
frame generator (``simulate_session``/``generate_dataset``), built from today's dataset
configs: that generator reads these fields (``trainer.synthetic.DatasetFields``), which the
dataset dialect no longer has (it generates raw 240 Hz sessions instead)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer.configs.dataset_schema.synthetic import GENERATOR_VERSION
from trainer.data import load_dataset_config
from trainer.data.config import derived_seed

BEHAVIOR_DIM = 8  # eye position and velocity + 4 saccade-time features


@dataclass(frozen=True)
class FrameSession:
    name: str
    stim_type: str
    n_units: int
    seed: int
    synthetic: dict[str, Any]


@dataclass(frozen=True)
class FrameConfig:
    sessions: list[FrameSession]
    n_lags: int
    data_root: Path
    behavior_dim: int = BEHAVIOR_DIM
    frame_rate_hz: float = 120.0
    extra: dict = field(default_factory=dict)

    def session_dir(self, session: FrameSession) -> Path:
        spec = {**session.__dict__, "n_lags": self.n_lags, "v": GENERATOR_VERSION}
        digest = hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:10]
        return self.data_root / "synthetic" / f"{session.name}-{digest}"


def load_frame_config(
    name: str, data_root: Path | str = "data", max_datasets=None, behavior_dim: int = BEHAVIOR_DIM
) -> FrameConfig:
    config = load_dataset_config(name, data_root=data_root, max_datasets=max_datasets)
    sessions = []
    for s in config.sessions:
        block = dict(s.synthetic)
        n_units = block.pop("n_units")
        seed = block.pop("seed", derived_seed(s.fields["seed"], s.name))
        block.pop("n_lags", None)
        params = config.synthetic_spec(s).params
        sessions.append(FrameSession(s.name, s.fields["types"][0], n_units, seed, params))
    n_lags = len(config.sessions[0].fields["keys_lags"]["stim"])
    return FrameConfig(sessions, n_lags, config.data_root, behavior_dim)
