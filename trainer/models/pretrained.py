"""Load the vision core of a trained checkpoint into a new model (``--pretrained_checkpoint``).

Zero matching tensors is an error, never a silent fresh start: a loader that matches
nothing and trains from scratch without a word wastes a whole run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from trainer.contract.errors import ConfigError

# Checkpoint keys of the shared stages: ``model.<stage>.`` (corejob), ``<stage>.`` (bare).
CORE_STAGES = ("frontend", "convnet", "modulator", "recurrent")


@dataclass(frozen=True)
class PretrainedLoadReport:
    loaded: int
    shape_mismatch: list[str]
    not_in_checkpoint: list[str]

    def summary(self, path: str) -> str:
        return (
            f"pretrained core: loaded {self.loaded} tensors from {path}"
            f" ({len(self.shape_mismatch)} shape mismatches, "
            f"{len(self.not_in_checkpoint)} not in checkpoint)"
        )


def read_checkpoint_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict inside a Lightning/corejob checkpoint (or a bare state dict)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("--pretrained_checkpoint", str(path), "file not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ConfigError("--pretrained_checkpoint", str(path), f"unreadable ({exc})") from None
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict):
        raise ConfigError("--pretrained_checkpoint", str(path), "holds no state_dict")
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def core_tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Vision-core entries keyed relative to the core (``frontend.conv.weight``, ...)."""
    out = {}
    for key, value in state.items():
        for prefix in ("model.", "module.model.", ""):
            rest = key[len(prefix) :] if key.startswith(prefix) else None
            if rest is not None and rest.split(".", 1)[0] in CORE_STAGES:
                out[rest] = value
                break
    return out


def load_pretrained_core(core: nn.Module, path: str | Path) -> PretrainedLoadReport:
    """Copy matching core tensors (parameters and buffers) from checkpoint ``path``."""
    source = core_tensors(read_checkpoint_state(path))
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
            f"checkpoint, {len(mismatch)} with other shapes): use a checkpoint of the same core",
        )
    core.load_state_dict(matched, strict=False)
    missing = sorted(set(target) - set(matched))
    return PretrainedLoadReport(len(matched), sorted(mismatch), missing)
