"""VisionCore state dicts -> our module's names (pure: tensors in, tensors out).

Our modules already carry VisionCore's names (issue 12), so what is left is the shell a
checkpoint wraps them in and two layouts of the same parametrizations:

- the Lightning module's ``model.`` prefix, and ``model._orig_mod.`` when VisionCore's
  ``torch.compile`` wrapped the whole model (``._orig_mod.`` further in: a submodule);
- weight norm as VisionCore's own parametrization (``parametrizations.weight.original``,
  ``.0.g``, ``.0.v``: ours) or as torch's built-in ``parametrizations.weight_norm``
  (``original0`` = g with kept dims, ``original1`` = v, no ``original``): g and v are the
  same numbers in both; ``original``, which neither forward reads, becomes g * v / |v|;
- spectral norm as ``nn.utils.spectral_norm`` (``weight_orig``, ``weight_u``,
  ``weight_v``: ours) or as the parametrization (``parametrizations.weight.original``,
  ``.0._u``, ``.0._v``): the same power-iteration vectors under other names.
"""

from __future__ import annotations

import re

import torch

MODEL_PREFIXES = ("model._orig_mod.", "model.")
_WN_G, _WN_V = ".parametrizations.weight.original0", ".parametrizations.weight.original1"
_SN_U = ".parametrizations.weight.0._u"
_READOUT_SIZE = re.compile(r"^readouts?\.(?:(\d+)\.)?(?:features|fc)\.weight$")
_READOUT_SIZE_WN = re.compile(
    r"^readouts?\.(?:(\d+)\.)?(?:features|fc)\.parametrizations\.weight\.(?:original|0\.v)$"
)


def split_model_state(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """``(tensors of the network keyed as in our model, other keys)``.

    The other keys are the Lightning module's own tensors outside ``model`` (none in
    VisionCore's today); the caller decides whether they matter.
    """
    model, others = {}, []
    for key, value in state.items():
        prefix = next((p for p in MODEL_PREFIXES if key.startswith(p)), None)
        if prefix is None:
            others.append(key)
        else:  # a compiled submodule leaves ``_orig_mod`` inside the path too
            model[key[len(prefix) :].replace("._orig_mod.", ".")] = value
    return model, others


def unify_weight_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torch's built-in weight-norm keys -> VisionCore's (ours); other keys unchanged."""
    out = {k: v for k, v in state.items() if not k.endswith((_WN_G, _WN_V))}
    for key in state:
        if not key.endswith(_WN_G):
            continue
        stem = key[: -len(_WN_G)] + ".parametrizations.weight"
        g, v = state[key], state.get(stem + ".original1")
        if v is None:
            raise ValueError(f"{stem}.original1 (weight norm's v) is missing next to original0")
        out[stem + ".0.g"] = g.reshape(-1)
        out[stem + ".0.v"] = v
        out.setdefault(stem + ".original", _weight_from_norm(g, v))
    return out


def _weight_from_norm(g: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """g * v / |v|, the norm over every axis along which g is constant (g keeps dims)."""
    axes = tuple(d for d in range(v.ndim) if g.shape[d] == 1)
    norm = torch.linalg.vector_norm(v, dim=axes, keepdim=True).clamp_min(1e-12)
    return g * (v / norm)


def unify_spectral_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The parametrization's spectral-norm keys -> ``nn.utils.spectral_norm``'s (ours)."""
    out = dict(state)
    for key in state:
        if not key.endswith(_SN_U):
            continue
        base = key[: -len(_SN_U)]
        stem = base + ".parametrizations.weight"
        for theirs, ours in ((".original", "_orig"), (".0._u", "_u"), (".0._v", "_v")):
            if stem + theirs not in out:
                raise ValueError(f"{stem}{theirs} (spectral norm) is missing next to {key}")
            out[f"{base}.weight{ours}"] = out.pop(stem + theirs)
    return out


def visioncore_model_state(
    state: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """A VisionCore checkpoint's ``state_dict`` as our model's state dict (+ ignored keys)."""
    model, others = split_model_state(state)
    return unify_spectral_norm(unify_weight_norm(model)), others


def readout_sizes(state: dict[str, torch.Tensor]) -> list[int]:
    """Units of each readout, in session order, from the readouts' feature weights."""
    sizes: dict[int, int] = {}
    for key, value in state.items():
        match = _READOUT_SIZE.match(key) or _READOUT_SIZE_WN.match(key)
        if match:
            sizes[int(match.group(1) or 0)] = int(value.shape[0])
    return [sizes[i] for i in sorted(sizes)]
