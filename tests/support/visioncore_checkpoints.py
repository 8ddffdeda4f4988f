"""VisionCore-layout Lightning checkpoints made from our own modules (test helper).

The tests may not depend on VisionCore's code, so a checkpoint "as VisionCore writes it"
is built here from our model, whose module tree has VisionCore's names: the Lightning
module's ``model.`` prefix (``model._orig_mod.`` after ``torch.compile``), weight norm in
VisionCore's own layout (``parametrizations.weight.original``, ``.0.g``, ``.0.v``) or
torch's built-in one (``original0`` = g with kept dims, ``original1`` = v), spectral norm
as ``weight_orig/_u/_v`` or as the parametrization (``original``, ``0._u``, ``0._v``),
and ``hyper_parameters`` as VisionCore's ``MultiDatasetModel.save_hyperparameters`` saves
them (``model_config_dict``, or only the YAML path ``model_cfg`` in older checkpoints).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from trainer.models.layers.conv import WeightNorm


@torch.no_grad()
def randomize(model: nn.Module, seed: int = 0) -> None:
    """Every float tensor of the state dict away from its init (a trained model's tensors;
    non-persistent buffers such as window masks are part of the architecture, not state)."""
    generator = torch.Generator().manual_seed(seed)
    for name, tensor in model.state_dict().items():  # shares storage with the model
        if tensor.is_floating_point():
            tensor.add_(torch.randn(tensor.shape, generator=generator) * 0.1)
        if name.endswith("running_var"):
            tensor.abs_().add_(0.5)


def visioncore_state(
    model: nn.Module, weight_norm: str = "visioncore", spectral: str = "legacy", compiled=False
) -> OrderedDict[str, torch.Tensor]:
    """``model``'s state dict laid out as a VisionCore checkpoint's ``state_dict``."""
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if weight_norm == "torch":
        state = _torch_weight_norm(model, state)
    if spectral == "parametrization":
        state = _parametrized_spectral_norm(state)
    prefix = "model._orig_mod." if compiled else "model."
    return OrderedDict((prefix + k, v) for k, v in state.items())


def _torch_weight_norm(model: nn.Module, state: dict) -> dict:
    for name, module in model.named_modules():
        if not isinstance(module, WeightNorm):
            continue  # ``name`` is ``<conv>.parametrizations.weight.0``
        stem = name[: -len(".0")]
        g, v = state.pop(f"{name}.g"), state.pop(f"{name}.v")
        shape = [1] * v.ndim
        shape[module.dim] = -1
        state.pop(f"{stem}.original")
        state[f"{stem}.original0"] = g.reshape(shape)
        state[f"{stem}.original1"] = v
    return state


SPECTRAL_NAMES = (("weight_orig", "original"), ("weight_u", "0._u"), ("weight_v", "0._v"))


def _parametrized_spectral_norm(state: dict) -> dict:
    out = {}
    for key, value in state.items():
        for ours, theirs in (
            ("weight_orig", "original"),
            ("weight_u", "0._u"),
            ("weight_v", "0._v"),
        ):
            if key.endswith("." + ours):
                key = f"{key[: -len(ours)]}parametrizations.weight.{theirs}"
                break
        out[key] = value
    return out


def visioncore_checkpoint(
    state: OrderedDict[str, torch.Tensor], raw_config: dict | None, model_cfg: str = "m.yaml"
) -> dict[str, Any]:
    """A Lightning checkpoint dict as VisionCore's training script saves it."""
    hparams: dict[str, Any] = {
        "model_cfg": model_cfg, "cfg_dir": "configs/multi.yaml", "lr": 1e-3, "wd": 1e-5,
        "max_ds": 20, "pretrained_checkpoint": None, "freeze_vision": False,
        "compile_model": False,
    }  # fmt: skip
    if raw_config is not None:
        hparams["model_config_dict"] = raw_config
    return {
        "epoch": 3,
        "global_step": 1200,
        "pytorch-lightning_version": "2.5.1",
        "state_dict": state,
        "hyper_parameters": hparams,
    }
