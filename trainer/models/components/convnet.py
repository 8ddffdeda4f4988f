"""Conv nets of 3-D ``ConvBlock``s: ``vanilla`` (a stack), ``resnet``, ``densenet``.

Module names follow VisionCore (``stem``, ``layers.i``, ``final_activation``; ResNet
blocks ``layers.i.main_block`` / ``.shortcut``). A ResNet shortcut is a bias-free
1x1x1 conv whenever channels change or the block strides (conv stride x pool
``stride``, as VisionCore counts it), cropped to the main branch: latest frames,
spatial centre. A DenseNet block's output is concatenated to its cropped input.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from trainer.models.layers.block import ConvBlock, ResBlock, crop_like
from trainer.models.layers.norm_act import make_activation


def _stride_product(block: dict[str, Any]) -> Any:
    """Conv stride x pool stride (a pool without ``stride`` counts as 1, as upstream)."""
    conv = block["conv_params"].get("stride", 1)
    pool = (block.get("pool_params") or {}).get("stride") or 1
    if isinstance(conv, int) and isinstance(pool, int):
        return conv * pool
    conv = conv if isinstance(conv, list | tuple) else [conv] * 3
    pool = pool if isinstance(pool, list | tuple) else [pool] * 3
    return tuple(c * p for c, p in zip(conv, pool, strict=True))


class ConvNet(nn.Module):
    """``stem -> layers -> final_activation``; ``kind`` picks how blocks are connected."""

    def __init__(self, kind: str, in_channels: int, params: dict[str, Any]):
        super().__init__()
        self.kind = kind
        channels = in_channels
        if params.get("stem_config"):
            stem = dict(params["stem_config"])
            self.stem = ConvBlock(channels, stem.pop("out_channels"), **stem)
            channels = self.stem.output_channels
        self.layers = nn.ModuleList()
        post_add = params.get("resnet_post_add_activation")
        for width, block in zip(params["channels"], params["block_configs"], strict=True):
            spec = {
                k: v for k, v in block.items() if k not in ("out_channels", "channel_multiplier")
            }
            main = ConvBlock(channels, width, **spec)
            out = main.output_channels
            if kind == "resnet":
                stride = _stride_product(block)
                strided = any(s > 1 for s in stride) if isinstance(stride, tuple) else stride > 1
                shortcut = (nn.Conv3d(channels, out, 1, stride=stride, bias=False)
                            if strided or channels != out else nn.Identity())  # fmt: skip
                self.layers.append(ResBlock(main, shortcut, make_activation(post_add)))
                channels = out
            elif kind == "densenet":
                self.layers.append(main)
                channels += out
            else:
                self.layers.append(main)
                channels = out
        self.output_channels = channels
        self.final_activation = make_activation(params.get("final_activation"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "stem"):
            x = self.stem(x)
        if self.kind == "densenet":
            for block in self.layers:
                out = block(x)
                x = torch.cat([crop_like(x, out), out], dim=1)
        else:
            for block in self.layers:
                x = block(x)
        return self.final_activation(x)
