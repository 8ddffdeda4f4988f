"""Load the vision core of a trained checkpoint into a new model (``--pretrained_checkpoint``).

The checkpoint may be ours, VisionCore's (its layouts are mapped by
``trainer.models.checkpoints``) or a bare state dict; it is read with
``weights_only=True`` unless ``--trust_checkpoint`` says otherwise.
Zero matching tensors is an error, never a silent fresh start: a loader that matches
nothing and trains from scratch without a word wastes a whole run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainer.contract.errors import ConfigError
from trainer.models.checkpoints.files import load_torch_file
from trainer.models.checkpoints.layout import (
    readout_sizes,
    split_model_state,
    visioncore_model_state,
)

# Checkpoint keys of the shared stages: ``model.<stage>.`` (corejob), ``<stage>.`` (bare).
CORE_STAGES = ("frontend", "convnet", "modulator", "recurrent")
# The per-session parts (``v1``: one of each, singular names).
HEAD_PARTS = (
    *("adapters", "readouts", "baselines", "spike_history"),
    *("adapter", "readout", "baseline"),
)


@dataclass(frozen=True)
class PretrainedLoadReport:
    loaded: int
    shape_mismatch: list[str]
    not_in_checkpoint: list[str]
    kind: str = "corejob"

    def summary(self, path: str) -> str:
        return (
            f"pretrained core: loaded {self.loaded} tensors from {path} ({self.kind};"
            f" {len(self.shape_mismatch)} shape mismatches, "
            f"{len(self.not_in_checkpoint)} not in checkpoint)"
        )


def read_checkpoint_sessions(path: str | Path, trust: bool = False) -> tuple[str, dict, list]:
    """``(kind, the network's tensors under our names, the session names a corejob
    checkpoint embeds or [])`` of a checkpoint or bare state dict."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("--pretrained_checkpoint", str(path), "file not found")
    obj = load_torch_file(path, trust)
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict):
        raise ConfigError("--pretrained_checkpoint", str(path), "holds no state_dict")
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    meta = obj.get("corejob")
    if isinstance(meta, dict):
        names = [s.get("name") for s in meta.get("sessions") or []]
        return "corejob", split_model_state(tensors)[0], names
    if "hyper_parameters" in obj:
        try:
            return "VisionCore", visioncore_model_state(tensors)[0], []
        except ValueError as error:
            raise ConfigError("--pretrained_checkpoint", str(path), str(error)) from None
    bare = {k.removeprefix("module."): v for k, v in tensors.items()}
    return "state dict", split_model_state(bare)[0] or bare, []


def core_tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Vision-core entries keyed relative to the core (``frontend.conv.weight``, ...)."""
    return {k: v for k, v in state.items() if k.split(".", 1)[0] in CORE_STAGES}


def load_pretrained_core(
    core: nn.Module, path: str | Path, trust: bool = False, read: tuple | None = None
) -> PretrainedLoadReport:
    """Copy matching core tensors (parameters and buffers) from checkpoint ``path``
    (``read``: its ``read_checkpoint_sessions`` when the caller already has it)."""
    kind, state, _ = read or read_checkpoint_sessions(path, trust)
    source = core_tensors(state)
    target = core.state_dict()
    matched, mismatch = {}, []
    for key, value in source.items():
        if key in target:
            if target[key].shape == value.shape:
                matched[key] = value
            else:
                mismatch.append(key)
    if not matched:
        raise ConfigError(
            "--pretrained_checkpoint",
            str(path),
            f"no vision-core tensor matches this model ({len(source)} core tensors in the "
            f"{kind} checkpoint, {len(mismatch)} with other shapes): use a checkpoint of the"
            " same core",
        )
    core.load_state_dict(matched, strict=False)
    missing = sorted(set(target) - set(matched))
    return PretrainedLoadReport(len(matched), sorted(mismatch), missing, kind)


def load_pretrained_heads(
    model: nn.Module,
    path: str | Path,
    sessions: list[tuple[str, int]],
    trust: bool = False,
    read: tuple | None = None,
) -> int:
    """``--pretrained_heads``: the per-session parts too (adapters, readouts, baselines,
    history MLPs), to continue training an imported model on the sessions it was trained
    on. Readout ``i`` must have session ``i``'s units (and, in our checkpoints, its name):
    heads moved onto other neurons would be wrong without a word. Returns tensors loaded."""
    kind, state, names = read or read_checkpoint_sessions(path, trust)
    units = readout_sizes(state)
    wanted = [n for _, n in sessions]
    if units != wanted or (names and names != [name for name, _ in sessions]):
        saved = f"{names} with units {units}" if names else f"readouts of {units} units"
        raise ConfigError(
            "--pretrained_heads",
            str(path),
            f"the {kind} checkpoint has {saved}, the dataset {[name for name, _ in sessions]}"
            f" with {wanted}: heads only load onto the sessions they were trained on",
        )
    heads = {k: v for k, v in state.items() if k.split(".", 1)[0] in HEAD_PARTS}
    target = model.state_dict()
    wrong = sorted(k for k, v in heads.items() if k not in target or target[k].shape != v.shape)
    if wrong or not heads:
        problem = f"per-session tensors do not fit this model: {wrong[:3]}"
        raise ConfigError("--pretrained_heads", str(path), problem)
    model.load_state_dict(heads, strict=False)
    return len(heads)


def load_pretrained_model(model: Any, path: str, trust: bool = False, heads: bool = False):
    """``--pretrained_checkpoint`` (+ ``--pretrained_heads``) into a ``MultiDatasetModel``;
    returns the lines to print."""
    read = read_checkpoint_sessions(path, trust)  # once: checkpoints can be gigabytes
    lines = [load_pretrained_core(model.model.core, path, trust, read).summary(path)]
    if heads:
        sessions = [(s.name, s.n_units) for s in model.sessions]
        count = load_pretrained_heads(model.model, path, sessions, trust, read)
        lines.append(f"pretrained heads: loaded {count} tensors for {len(sessions)} sessions")
    return lines
