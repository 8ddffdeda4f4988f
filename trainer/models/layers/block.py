"""VisionCore's ``ConvBlock`` (pad -> conv -> norm -> act -> dropout -> pool) and ``ResBlock``.

Time is axis 2 of ``(B, C, T, H, W)``, index -1 the current frame. A causal block with a
temporal kernel (kT > 1) pads ``(kT - 1) * dilation`` *past* frames by replicating the
first one and never looks ahead; its H/W padding is ``conv_params.padding`` (replicate).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from trainer.models.layers.conv import CONV_TYPES, triple
from trainer.models.layers.norm_act import doubles_channels, make_activation, make_norm
from trainer.models.layers.pool import make_pool


def causal_padding(kernel: Any, dilation: Any, causal: bool, padding: Any) -> tuple[int, ...]:
    """``F.pad`` amounts ``(W, W, H, H, T_past, T_future)``; 1-tap axes get none."""
    kernel, dilation = triple(kernel), triple(dilation)
    if padding is None:
        padding = (0, 0, 0)
    elif isinstance(padding, int):
        padding = (padding,) * 3
    elif len(padding) == 2:
        padding = (0, *padding)
    amounts: list[int] = []
    for axis in (2, 1, 0):
        if kernel[axis] == 1:
            amounts += [0, 0]
        elif causal and axis == 0:
            amounts += [dilation[0] * (kernel[0] - 1), 0]
        else:
            amounts += [padding[axis], padding[axis]]
    return tuple(amounts)


def step_channels(order: Sequence[str], step: str, conv_out: int, split: bool) -> int:
    """Channels ``step`` of a block sees: twice the conv's after a SplitReLU (VisionCore
    builds a norm or pool placed there for the conv's count and crashes; README)."""
    order = list(order)
    if split and "act" in order and step in order and order.index(step) > order.index("act"):
        return 2 * conv_out
    return conv_out


class ConvBlock(nn.Module):
    """One configurable 3-D conv block; ``output_channels`` counts SplitReLU's doubling."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        conv_params: dict[str, Any],
        norm_type: str | None = "batch",
        norm_params: dict[str, Any] | None = None,
        act_type: str | None = "relu",
        act_params: dict[str, Any] | None = None,
        pool_params: dict[str, Any] | None = None,
        dropout: float = 0.0,
        causal: bool = True,
        order: Sequence[str] = ("pad", "conv", "norm", "act", "dropout", "pool"),
        **_: Any,
    ):
        super().__init__()
        conv = dict(conv_params)
        kernel = triple(conv["kernel_size"])
        self.dim = 3 if kernel[0] > 1 else 2
        self.causal, self.order = causal, tuple(order)
        native = conv.get("padding", 0)
        dilation = conv.get("dilation", 1)
        self.padding_amount: tuple[int, ...] = (0,) * 6
        if causal and self.dim == 3:
            self.padding_amount = causal_padding(kernel, dilation, True, native)
            conv["padding"] = 0
        elif "pad" in self.order:
            self.padding_amount = causal_padding(kernel, dilation, causal, None)
            conv["padding"] = 0
        conv_cls = CONV_TYPES[conv.pop("type", "standard")]
        if conv.get("bias") is None:
            conv["bias"] = norm_type in (None, "none")
        self.components = nn.ModuleDict()
        self.components["conv"] = conv_cls(in_channels, out_channels, **conv)
        act = make_activation(act_type, act_params)
        self._conv_out = out_channels
        self._split = doubles_channels(act)
        width = {step: step_channels(self.order, step, out_channels, self._split)
                 for step in ("norm", "pool")}  # fmt: skip
        self.components["norm"] = make_norm(norm_type, width["norm"], norm_params)
        self.components["act"] = act
        self.components["dropout"] = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.components["pool"] = make_pool(pool_params, width["pool"], self.dim)

    @property
    def output_channels(self) -> int:
        return self._conv_out * 2 if self._split else self._conv_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for step in self.order:
            if step == "pad":
                if any(self.padding_amount):
                    x = F.pad(x, self.padding_amount, mode="replicate")
            else:
                x = self.components[step](x)
        return x


def center_crop(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The central ``height x width`` of the last two axes (VisionCore's ``chomp``; an
    axis already smaller stays as it is)."""
    height, width = min(height, x.shape[-2]), min(width, x.shape[-1])
    top, left = (x.shape[-2] - height) // 2, (x.shape[-1] - width) // 2
    return x[..., top : top + height, left : left + width]


def crop_like(x: torch.Tensor, ref: torch.Tensor, causal_time: bool = True) -> torch.Tensor:
    """Crop ``x`` to ``ref``'s T/H/W: keep the latest frames, the spatial centre."""
    if x.shape[2:] == ref.shape[2:]:
        return x
    if x.shape[2] > ref.shape[2]:
        extra = x.shape[2] - ref.shape[2]
        start = extra if causal_time else max(extra // 2, 0)
        x = x[:, :, start : start + ref.shape[2]]
    return center_crop(x, ref.shape[-2], ref.shape[-1])


class ResBlock(nn.Module):
    """``post_add_activation(main_block(x) + crop(shortcut(x)))``."""

    def __init__(self, main_block: ConvBlock, shortcut: nn.Module, post_add_activation: nn.Module):
        super().__init__()
        self.main_block = main_block
        self.shortcut = shortcut
        self.post_add_activation = post_add_activation

    @property
    def output_channels(self) -> int:
        return self.main_block.output_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.main_block(x)
        s = self.shortcut(x)
        if s.shape != y.shape:
            if any(a < b for a, b in zip(s.shape[2:], y.shape[2:], strict=True)):
                # VisionCore raises here (a padded, strided main branch larger than its
                # shortcut); both are cropped to the common size instead (README).
                y = crop_like(y, s)
            s = crop_like(s, y)
        return self.post_add_activation(y + s)
