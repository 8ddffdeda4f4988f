"""Read a checkpoint file without running its code, and say what model it holds.

Checkpoints are loaded with ``torch.load(weights_only=True)``: a pickle can run arbitrary
code, and a checkpoint is often a file from someone else. One that needs more (a custom
class in its hyper-parameters, numpy scalars) is refused with the reason and the flag
(``--trust_checkpoint``) that loads it fully, never unpickled silently.

Two kinds are recognised: ours (the ``corejob`` entry embeds model config, sessions and
dataset config) and VisionCore's Lightning checkpoints (``hyper_parameters`` holds
``model_config_dict``; older ones only the YAML path ``model_cfg``, so ``--model_config``
must name that file).
"""

from __future__ import annotations

import copy
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from trainer.configs.model_schema import load_model_config, validate_model_config
from trainer.contract.errors import ConfigError, DataError, first_line
from trainer.models.checkpoints.layout import (
    readout_sizes,
    split_model_state,
    visioncore_model_state,
)

TRUST_FLAG = "--trust_checkpoint"
COREJOB, VISIONCORE = "corejob", "visioncore"


@dataclass(frozen=True)
class CheckpointModel:
    """A checkpoint's network: config, tensors keyed as ``MultiDatasetV1Model``'s, sizes."""

    path: str
    kind: str  # COREJOB | VISIONCORE
    model_config: dict[str, Any]
    state: dict[str, torch.Tensor]
    units: tuple[int, ...]  # readout sizes in session order
    sessions: tuple[dict[str, Any], ...] = ()  # ours: the embedded SessionInfo dicts
    dataset_config: dict[str, Any] | None = None
    ignored: tuple[str, ...] = field(default=())  # state keys outside the network


def load_checkpoint_file(path: str | Path, trust: bool = False) -> dict[str, Any]:
    """The unpickled Lightning checkpoint (tensors on the CPU); one-line errors naming it."""
    raw = load_torch_file(path, trust)
    if not isinstance(raw, dict) or not isinstance(raw.get("state_dict"), dict):
        raise DataError(path, "holds no state_dict: not a Lightning checkpoint")
    return raw


def load_torch_file(path: str | Path, trust: bool = False) -> Any:
    """``torch.load`` with ``weights_only=True`` unless ``trust``; one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(str(path), "checkpoint", "file not found")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if not trust:
            raise DataError(
                path,
                f"needs full unpickling, which can run code ({_unpickling_reason(error)}); "
                f"pass {TRUST_FLAG} if you trust where it came from",
            ) from None
        raw = _load_trusted(path)
    except Exception as error:  # truncated zip, not a torch file, ...
        raise DataError(path, f"not a readable checkpoint ({first_line(error)[:200]})") from None
    return raw


def _load_trusted(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:
        raise DataError(path, f"not a readable checkpoint ({first_line(error)[:200]})") from None


def _unpickling_reason(error: BaseException) -> str:
    """What a weights-only load tripped on, from torch's multi-paragraph message."""
    text = str(error)
    match = re.search(r"GLOBAL (\S+)", text)
    if match:
        return f"it refers to {match.group(1)}"
    match = re.search(r"Unsupported [^\n.]*", text)
    return match.group(0).strip() if match else "not a tensors-only file"


def read_checkpoint_model(
    path: str | Path, model_config: str | None = None, trust: bool = False
) -> CheckpointModel:
    """Load ``path`` and describe its network (see :func:`describe_checkpoint`)."""
    return describe_checkpoint(load_checkpoint_file(path, trust), str(path), model_config)


def describe_checkpoint(
    raw: dict[str, Any], path: str, model_config: str | None = None
) -> CheckpointModel:
    """Which kind ``raw`` is, its resolved model config and its tensors under our names.

    ``model_config`` (a ``--model_config`` value) is required for VisionCore checkpoints
    that lack ``model_config_dict`` and overrides it otherwise; ours embed theirs.
    """
    tensors = {k: v for k, v in raw["state_dict"].items() if isinstance(v, torch.Tensor)}
    meta = raw.get("corejob")
    if isinstance(meta, dict):
        if model_config is not None:
            raise ConfigError(
                "--model_config", model_config,
                f"{path} is a corejob checkpoint and embeds its model config; drop the flag",
            )  # fmt: skip
        if not isinstance(meta.get("model_config"), dict):
            raise DataError(path, "its corejob entry holds no model_config: a damaged checkpoint")
        state, ignored = split_model_state(tensors)
        return CheckpointModel(
            path, COREJOB, copy.deepcopy(meta["model_config"]), state, tuple(readout_sizes(state)),
            tuple(meta.get("sessions") or ()), meta.get("dataset_config"), tuple(ignored),
        )  # fmt: skip
    config = _visioncore_config(raw, path, model_config)
    try:
        state, ignored = visioncore_model_state(tensors)
    except ValueError as error:
        raise DataError(path, f"state_dict: {error}") from None
    if not state:
        raise DataError(path, "state_dict has no model.* tensors: not a VisionCore checkpoint")
    return CheckpointModel(
        path, VISIONCORE, config, state, tuple(readout_sizes(state)), ignored=tuple(ignored)
    )


def _visioncore_config(raw: dict[str, Any], path: str, model_config: str | None) -> dict:
    if model_config is not None:
        return load_model_config(model_config)
    hparams = raw.get("hyper_parameters")
    hparams = hparams if isinstance(hparams, dict) else {}
    embedded = hparams.get("model_config_dict")
    if isinstance(embedded, dict):
        named = {"name": Path(path).stem, **embedded}
        return validate_model_config(named, f"{path}: hyper_parameters.model_config_dict")
    if hparams.get("model_cfg"):
        raise ConfigError(
            path,
            "hyper_parameters",
            f"has only model_cfg={hparams['model_cfg']!r}, not the config itself (an older "
            "VisionCore checkpoint): pass --model_config with that YAML file",
        )
    raise ConfigError(
        path,
        "checkpoint",
        "neither a corejob checkpoint (no 'corejob' entry) nor a VisionCore one (no "
        "hyper_parameters.model_config_dict or model_cfg); pass --model_config to read its "
        "model.* tensors with that config",
    )
