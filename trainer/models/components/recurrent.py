"""Recurrent stages over the time axis: ConvGRU, and GRU/LSTM on flattened frames.

The ConvGRU computes every gate's input-side convolution for all time steps in one
call (the gate weights split into input and hidden halves), leaving only the hidden-side
convolutions in the loop over time; the result equals the per-step formulation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvGRUCell(nn.Module):
    """Gates ``z, r`` and candidate ``n`` from convs of ``[x, h]`` (``[x, r * h]`` for n)."""

    def __init__(self, input_size: int, hidden_size: int, kernel_size: int = 3):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"ConvGRU kernel_size must be odd, got {kernel_size}")
        both = input_size + hidden_size
        pad = kernel_size // 2
        self.update_gate = nn.Conv2d(both, hidden_size, kernel_size, padding=pad)
        self.reset_gate = nn.Conv2d(both, hidden_size, kernel_size, padding=pad)
        self.out_gate = nn.Conv2d(both, hidden_size, kernel_size, padding=pad)
        self.input_size, self.hidden_size, self.pad = input_size, hidden_size, pad
        for conv in (self.update_gate, self.reset_gate, self.out_gate):
            nn.init.orthogonal_(conv.weight)
            nn.init.zeros_(conv.bias)
        nn.init.ones_(self.update_gate.bias)

    def sequence(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, C, H, W) -> (B, T, hidden, H, W)`` from a zero initial state."""
        b, t, c, h, w = x.shape
        gates = (self.update_gate, self.reset_gate, self.out_gate)
        w_in = torch.cat([g.weight[:, : self.input_size] for g in gates])
        bias = torch.cat([g.bias for g in gates])
        drive = F.conv2d(x.reshape(b * t, c, h, w), w_in, bias, padding=self.pad)
        drive = drive.view(b, t, 3, self.hidden_size, h, w)
        w_zr = torch.cat([g.weight[:, self.input_size :] for g in gates[:2]])
        w_n = self.out_gate.weight[:, self.input_size :]
        state = x.new_zeros(b, self.hidden_size, h, w)
        outputs = []
        for step in range(t):
            zr = drive[:, step, :2] + F.conv2d(state, w_zr, padding=self.pad).view(
                b, 2, self.hidden_size, h, w
            )
            z, r = torch.sigmoid(zr[:, 0]), torch.sigmoid(zr[:, 1])
            n = torch.tanh(drive[:, step, 2] + F.conv2d(r * state, w_n, padding=self.pad))
            state = (1.0 - z) * state + z * n
            outputs.append(state)
        return torch.stack(outputs, dim=1)


class ConvGRU(nn.Module):
    """Stacked ConvGRU cells: ``(B, C, T, H, W) -> (B, hidden, T, H, W)``."""

    def __init__(self, input_size: int, hidden_sizes: int | list[int],
                 kernel_sizes: int | list[int], n_layers: int = 1):  # fmt: skip
        super().__init__()
        hidden = hidden_sizes if isinstance(hidden_sizes, list) else [hidden_sizes] * n_layers
        kernels = kernel_sizes if isinstance(kernel_sizes, list) else [kernel_sizes] * n_layers
        cells, channels = [], input_size
        for width, kernel in zip(hidden, kernels, strict=True):
            cells.append(ConvGRUCell(channels, width, kernel))
            channels = width
        self.cells = nn.ModuleList(cells)
        self.output_channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = x.transpose(1, 2)
        for cell in self.cells:
            seq = cell.sequence(seq)
        return seq.transpose(1, 2)


class RecurrentWrapper(nn.Module):
    """``nn.GRU``/``nn.LSTM`` over ``(B, T, C*H*W)``: ``-> (B, hidden, T, 1, 1)``.

    The RNN's input size is known only from the first input; the model builder runs one
    dry forward pass before the optimizer exists, so its parameters are always trained
    (VisionCore creates it during the first training step, after the optimizer).
    """

    def __init__(self, rnn_type: str, hidden_size: int, input_channels: int, **rnn_kwargs):
        super().__init__()
        self.rnn_type, self.hidden_size = rnn_type, hidden_size
        self.input_channels, self.output_channels = input_channels, hidden_size
        self.rnn_kwargs = rnn_kwargs
        self.rnn: nn.Module | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        if self.rnn is None:
            cls = nn.GRU if self.rnn_type == "gru" else nn.LSTM
            self.rnn = cls(c * h * w, self.hidden_size, batch_first=True, **self.rnn_kwargs)
            self.rnn.to(x.device)
        out, _ = self.rnn(x.permute(0, 2, 1, 3, 4).reshape(b, t, c * h * w))
        return out.transpose(1, 2)[..., None, None]
