"""Recurrent stages: integrate the feature maps over time steps (the frontend's outputs).

Only the final hidden state is returned: the readout predicts the response at the most
recent time step, so earlier states need not be kept (saves memory at 33+ lags).
"""

from __future__ import annotations

import torch
from torch import nn

from trainer.models.registry import BuildContext, Field, register


class ConvGRUCell(nn.Module):
    def __init__(self, c_in: int, hidden: int, k: int):
        super().__init__()
        self.hidden = hidden
        self.gates = nn.Conv2d(c_in + hidden, 2 * hidden, k, padding=k // 2)
        self.candidate = nn.Conv2d(c_in + hidden, hidden, k, padding=k // 2)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        update, reset = torch.sigmoid(self.gates(torch.cat([x, h], 1))).chunk(2, dim=1)
        proposal = torch.tanh(self.candidate(torch.cat([x, reset * h], 1)))
        return (1 - update) * h + update * proposal


class ConvGRU(nn.Module):
    """Stacked ConvGRU over ``(B, C, T, H, W)``; returns ``(B, hidden, 1, H, W)``."""

    def __init__(self, c_in: int, hidden: int, k: int, n_layers: int):
        super().__init__()
        self.cells = nn.ModuleList(
            ConvGRUCell(c_in if i == 0 else hidden, hidden, k) for i in range(n_layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = x.unbind(dim=2)
        for cell in self.cells:
            h = seq[0].new_zeros(seq[0].shape[0], cell.hidden, *seq[0].shape[-2:])
            states = []
            for frame in seq:
                h = cell(frame, h)
                states.append(h)
            seq = states
        return seq[-1].unsqueeze(2)


@register("recurrent", "none", doc="No recurrence: the readout sees the last time step.")
def build_no_recurrent(params: dict, ctx: BuildContext) -> tuple[nn.Module | None, int]:
    return None, ctx.in_channels


@register(
    "recurrent",
    "convgru",
    {"hidden_dim": Field(int, 16), "kernel_size": Field(int, 3), "n_layers": Field(int, 1)},
    doc="Convolutional GRU over time steps.",
)
def build_convgru(params: dict, ctx: BuildContext) -> tuple[nn.Module | None, int]:
    module = ConvGRU(
        ctx.in_channels, params["hidden_dim"], params["kernel_size"], params["n_layers"]
    )
    return module, params["hidden_dim"]
