"""VisionCore's MLP: ``Linear -> norm -> act -> dropout`` blocks, a linear output layer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from trainer.models.layers.norm_act import make_activation, make_norm


def _linear(in_features: int, out_features: int, bias: bool, spectral: bool) -> nn.Module:
    layer = nn.Linear(in_features, out_features, bias=bias)
    if not spectral:
        return layer
    layer = nn.utils.spectral_norm(layer)
    # The layer divides ``weight_orig`` by its largest singular value: its scale is
    # ignored, and decaying it would only speed up its updates (as weight norm's ``v``).
    layer.no_weight_decay = ("weight_orig",)
    return layer


class MLPBlock(nn.Module):
    """``linear -> norm -> act -> dropout``."""

    def __init__(self, in_features: int, out_features: int, *, norm_type: str | None,
                 act_type: str, dropout: float, bias: bool, norm_params: dict | None,
                 act_params: dict | None, spectral_norm: bool):  # fmt: skip
        super().__init__()
        self.linear = _linear(in_features, out_features, bias, spectral_norm)
        self.norm = make_norm(norm_type, out_features, norm_params, spatial=False)
        self.act = make_activation(act_type, act_params)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.act(self.norm(self.linear(x))))


class MLP(nn.Module):
    """Hidden blocks, then a linear (or, with ``output_activation``, a full) output layer.

    ``residual`` adds the input to the output when their sizes agree.
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dims: Sequence[int],
        output_dim: int,
        norm_type: str | None = None,
        act_type: str = "relu",
        dropout: float = 0.0,
        bias: bool = True,
        residual: bool = False,
        norm_params: dict[str, Any] | None = None,
        act_params: dict[str, Any] | None = None,
        output_activation: bool = False,
        spectral_norm: bool = False,
    ):
        super().__init__()
        self.input_dim, self.output_dim, self.residual = input_dim, output_dim, residual
        common = dict(norm_type=norm_type, act_type=act_type, bias=bias, norm_params=norm_params,
                      act_params=act_params, spectral_norm=spectral_norm)  # fmt: skip
        layers: list[nn.Module] = []
        previous = input_dim
        for width in hidden_dims:
            layers.append(MLPBlock(previous, width, dropout=dropout, **common))
            previous = width
        if output_activation:
            layers.append(MLPBlock(previous, output_dim, dropout=0.0, **common))
        else:
            layers.append(_linear(previous, output_dim, bias, spectral_norm))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.mlp(x)
        if self.residual and self.input_dim == self.output_dim:
            out = out + x
        return out
