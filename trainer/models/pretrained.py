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

import torch
from torch import nn

from trainer.contract.errors import ConfigError
from trainer.models.checkpoints.files import load_torch_file
from trainer.models.checkpoints.layout import split_model_state, visioncore_model_state

# Checkpoint keys of the shared stages: ``model.<stage>.`` (corejob), ``<stage>.`` (bare).
CORE_STAGES = ("frontend", "convnet", "modulator", "recurrent")


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


def read_checkpoint_state(path: str | Path, trust: bool = False) -> tuple[str, dict]:
    """``(kind, the network's tensors under our names)`` of a checkpoint or bare state dict."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("--pretrained_checkpoint", str(path), "file not found")
    obj = load_torch_file(path, trust)
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict):
        raise ConfigError("--pretrained_checkpoint", str(path), "holds no state_dict")
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if isinstance(obj.get("corejob"), dict):
        return "corejob", split_model_state(tensors)[0]
    if "hyper_parameters" in obj:
        try:
            return "VisionCore", visioncore_model_state(tensors)[0]
        except ValueError as error:
            raise ConfigError("--pretrained_checkpoint", str(path), str(error)) from None
    bare = {k.removeprefix("module."): v for k, v in tensors.items()}
    return "state dict", split_model_state(bare)[0] or bare


def core_tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Vision-core entries keyed relative to the core (``frontend.conv.weight``, ...)."""
    return {k: v for k, v in state.items() if k.split(".", 1)[0] in CORE_STAGES}


def load_pretrained_core(
    core: nn.Module, path: str | Path, trust: bool = False
) -> PretrainedLoadReport:
    """Copy matching core tensors (parameters and buffers) from checkpoint ``path``."""
    kind, state = read_checkpoint_state(path, trust)
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
