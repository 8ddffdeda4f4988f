"""Convnets: spatial feature extraction shared by all sessions, applied per time step.

The ResNet uses pre-activation blocks: the identity path carries the stem's linear
(Gabor-like) filter outputs untouched to the readout, which simple cells need, while the
residual branches add the rectified / squared combinations that complex cells need.
"""

from __future__ import annotations

import torch
from torch import nn

from trainer.contract.errors import ConfigError
from trainer.models.components.layers import (
    ACTIVATIONS,
    NORMS,
    make_activation,
    make_norm,
    per_frame,
)
from trainer.models.registry import BuildContext, Field, register


def _conv(c_in: int, c_out: int, k: int, padding: str) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, k, padding=k // 2 if padding == "same" else 0)


class VanillaConvNet(nn.Module):
    """conv -> norm -> activation, repeated."""

    def __init__(
        self, c_in: int, channels: list[int], kernels: list[int], act: str, norm: str, padding: str
    ):
        super().__init__()
        layers = []
        for c_out, k in zip(channels, kernels, strict=True):
            layers += [_conv(c_in, c_out, k, padding), make_norm(norm, c_out), make_activation(act)]
            c_in = c_out
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return per_frame(self.layers, x)


class PreActBlock(nn.Module):
    """``x + conv(act(norm(conv(act(norm(x))))))`` with a 1x1 projection if widths differ."""

    def __init__(self, c_in: int, c_out: int, k: int, act: str, norm: str, padding: str):
        super().__init__()
        self.norm1, self.act1 = make_norm(norm, c_in), make_activation(act)
        self.conv1 = _conv(c_in, c_out, k, padding)
        self.norm2, self.act2 = make_norm(norm, c_out), make_activation(act)
        self.conv2 = _conv(c_out, c_out, k, padding)
        self.skip = nn.Conv2d(c_in, c_out, 1, bias=False) if c_in != c_out else nn.Identity()
        self.crop = (k - 1) if padding == "valid" else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(self.act2(self.norm2(self.conv1(self.act1(self.norm1(x))))))
        skip = self.skip(x)
        if self.crop:
            skip = skip[..., self.crop : -self.crop, self.crop : -self.crop]
        return skip + h


class ResNet(nn.Module):
    """Linear stem followed by pre-activation residual blocks."""

    def __init__(self, c_in: int, params: dict):
        super().__init__()
        act, norm, padding = params["activation"], params["norm"], params["padding"]
        stem_padding = params["stem_padding"] or padding
        self.stem = _conv(c_in, params["stem_channels"], params["stem_kernel"], stem_padding)
        blocks, c = [], params["stem_channels"]
        for c_out in params["channels"]:
            blocks.append(PreActBlock(c, c_out, params["kernel_size"], act, norm, padding))
            c = c_out
        self.blocks = nn.Sequential(*blocks)
        self.out_act = make_activation(params["final_activation"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return per_frame(self._frames, x)

    def _frames(self, frames: torch.Tensor) -> torch.Tensor:
        return self.out_act(self.blocks(self.stem(frames)))


_COMMON = {
    "activation": Field(str, "relu", choices=ACTIVATIONS),
    "norm": Field(str, "none", choices=NORMS),
    "padding": Field(str, "same", choices=("same", "valid")),
}


@register("convnet", "none", doc="No spatial processing.")
def build_no_convnet(params: dict, ctx: BuildContext) -> tuple[nn.Module | None, int]:
    return None, ctx.in_channels


@register(
    "convnet",
    "vanilla",
    {
        "channels": Field(list, [16, 16], item_kind=int),
        "kernel_sizes": Field(list, [7, 3], item_kind=int),
        **_COMMON,
    },
    doc="Plain stack of conv/norm/activation layers.",
)
def build_vanilla(params: dict, ctx: BuildContext) -> tuple[nn.Module | None, int]:
    channels, kernels = params["channels"], params["kernel_sizes"]
    if len(kernels) != len(channels):
        raise ConfigError(
            ctx.source,
            "convnet.params.kernel_sizes",
            f"needs {len(channels)} entries, one per channel entry",
        )
    module = VanillaConvNet(
        ctx.in_channels, channels, kernels, params["activation"], params["norm"], params["padding"]
    )
    return module, channels[-1]


@register(
    "convnet",
    "resnet",
    {
        "stem_channels": Field(int, 16, doc="linear stem filters (Gabor-like after training)"),
        "stem_kernel": Field(int, 9),
        "channels": Field(list, [16, 16], item_kind=int, doc="output width of each residual block"),
        "kernel_size": Field(int, 3),
        "final_activation": Field(str, "identity", choices=ACTIVATIONS),
        # valid: the blocks run on the (H - k + 1)^2 centre only, where every stem output
        # saw a whole kernel of stimulus: far cheaper when receptive fields are central.
        "stem_padding": Field(
            str, None, choices=("same", "valid"), nullable=True, doc="null: same as padding"
        ),
        **_COMMON,
    },
    doc="Pre-activation ResNet: linear stem + residual blocks.",
)
def build_resnet(params: dict, ctx: BuildContext) -> tuple[nn.Module | None, int]:
    out = params["channels"][-1] if params["channels"] else params["stem_channels"]
    return ResNet(ctx.in_channels, params), out
