"""Behaviour modulators: combine core features ``(B, C, T, H, W)`` with behaviour ``(B, D)``.

- ``concat``: an MLP embedding of behaviour appended as constant channels.
- ``film``: ``scale(b) * x + shift(b)`` per channel (scale starts at 1, shift at 0).
- ``convgru``: features plus a behaviour embedding through a ConvGRU; the projected last
  step, ``(B, hidden, 1, H, W)``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from trainer.models.components.recurrent import ConvGRU
from trainer.models.layers.mlp import MLP


def behaviour_encoder(behavior_dim: int, encoder: dict[str, Any]) -> tuple[MLP, int]:
    """VisionCore's encoder: ``dims[:-1]`` hidden layers, ``dims[-1]`` outputs."""
    dims = list(encoder.get("dims") or [64, 64])
    mlp = MLP(
        behavior_dim,
        dims[:-1],
        dims[-1],
        act_type=encoder.get("activation", "gelu"),
        bias=encoder.get("bias", True),
        residual=encoder.get("residual", True),
        dropout=encoder.get("dropout", 0.0),
        output_activation=encoder.get("last_layer_activation", False),
    )
    return mlp, dims[-1]


class ConcatModulator(nn.Module):
    def __init__(self, behavior_dim: int, encoder_params: dict[str, Any]):
        super().__init__()
        self.encoder, self.out_dim = behaviour_encoder(behavior_dim, encoder_params)

    def forward(self, feats: torch.Tensor, beh: torch.Tensor) -> torch.Tensor:
        n, _, t, h, w = feats.shape
        emb = self.encoder(beh).to(feats.dtype)
        return torch.cat([feats, emb.view(n, -1, 1, 1, 1).expand(n, -1, t, h, w)], dim=1)


class FiLMModulator(nn.Module):
    def __init__(self, behavior_dim: int, feature_dim: int, encoder_params: dict[str, Any]):
        super().__init__()
        self.feature_dim = feature_dim
        self.encoder, hidden = behaviour_encoder(behavior_dim, encoder_params)
        self.scale_layer = nn.Linear(hidden, feature_dim)
        self.shift_layer = nn.Linear(hidden, feature_dim)
        nn.init.ones_(self.scale_layer.weight)
        nn.init.zeros_(self.scale_layer.bias)
        nn.init.zeros_(self.shift_layer.weight)
        nn.init.zeros_(self.shift_layer.bias)
        self.out_dim = 0

    def forward(self, feats: torch.Tensor, beh: torch.Tensor) -> torch.Tensor:
        emb = self.encoder(beh)
        shape = (feats.shape[0], self.feature_dim, 1, 1, 1)
        scale = self.scale_layer(emb).view(shape).to(feats.dtype)
        return scale * feats + self.shift_layer(emb).view(shape).to(feats.dtype)


class ConvGRUModulator(nn.Module):
    def __init__(self, behavior_dim: int, feature_dim: int, hidden_dim: int | None,
                 beh_emb_dim: int = 16, kernel_size: int = 3, **_: Any):  # fmt: skip
        super().__init__()
        self.feature_dim = feature_dim
        self.hidden_dim = hidden_dim or feature_dim
        self.beh_emb = nn.Linear(behavior_dim, beh_emb_dim)
        self.gru = ConvGRU(feature_dim + beh_emb_dim, self.hidden_dim, kernel_size, 1)
        self.output_proj = nn.Conv2d(self.hidden_dim, self.hidden_dim, 1)
        self.out_dim = self.hidden_dim

    def forward(self, feats: torch.Tensor, beh: torch.Tensor) -> torch.Tensor:
        n, _, t, h, w = feats.shape
        if beh.ndim == 3:
            beh = beh.mean(dim=1)
        emb = self.beh_emb(beh).to(feats.dtype).view(n, -1, 1, 1, 1).expand(n, -1, t, h, w)
        last = self.gru(torch.cat([feats, emb], dim=1))[:, :, -1]
        return self.output_proj(last).unsqueeze(2)


def build_modulator(kind: str, params: dict[str, Any], feature_dim: int, behavior_dim: int
                    ) -> tuple[nn.Module | None, int]:  # fmt: skip
    """``(module, channels after it)``."""
    if kind == "none":
        return None, feature_dim
    if kind == "concat":
        module = ConcatModulator(behavior_dim, params["encoder_params"])
        return module, feature_dim + module.out_dim
    if kind == "film":
        return FiLMModulator(behavior_dim, feature_dim, params["encoder_params"]), feature_dim
    extra = {k: params[k] for k in ("hidden_dim", "beh_emb_dim", "kernel_size")}
    module = ConvGRUModulator(behavior_dim, feature_dim, **extra)
    return module, module.out_dim
