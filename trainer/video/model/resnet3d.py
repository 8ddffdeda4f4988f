"""ResNet3D: 3-D convolutional residual network over ``(N, C, T, H, W)`` clips.

Two layouts from one config (``trainer.configs.video_schema.BackboneConfig``):
``depth: "18"`` is r3d-18 (Tran et al. 2018): a 3x7x7 stem with spatial stride 2, four
stages of two basic blocks (64, 128, 256, 512 channels), each stage after the first
halving time and space; ``depth: small`` keeps the blocks but uses a 3x3x3 stem (spatial
stride 2, as r3d-18's), so 16-32 px clips keep enough resolution and a CPU trains it in
minutes.

The stages are the ``stem``, ``stage1``, ... children: the freezing strategies
(``trainer.callbacks.finetune``) freeze and open them as units, input side first frozen
and last opened.
"""

from __future__ import annotations

import torch
from torch import nn

from trainer.configs.video_schema import BackboneConfig


def norm3d(kind: str, channels: int) -> nn.Module:
    """Batch norm (r3d-18's) or group norm (independent of the per-rank batch size)."""
    if kind == "batch":
        return nn.BatchNorm3d(channels)
    groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
    return nn.GroupNorm(groups, channels)


class BasicBlock3D(nn.Module):
    """Two 3x3x3 convolutions and a residual connection (projected when the shape changes)."""

    def __init__(self, c_in: int, c_out: int, stride: int, norm: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.norm1 = norm3d(norm, c_out)
        self.conv2 = nn.Conv3d(c_out, c_out, 3, padding=1, bias=False)
        self.norm2 = norm3d(norm, c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv3d(c_in, c_out, 1, stride=stride, bias=False), norm3d(norm, c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet3D(nn.Module):
    """Clip → feature vector (global average over time and space)."""

    def __init__(self, config: BackboneConfig, in_channels: int = 3) -> None:
        super().__init__()
        stride = (config.stem_temporal_stride, 2, 2)
        if config.depth == "18":
            conv = nn.Conv3d(in_channels, config.stem_channels, (3, 7, 7), stride, (1, 3, 3),
                             bias=False)  # fmt: skip
        else:
            conv = nn.Conv3d(in_channels, config.stem_channels, 3, stride, 1, bias=False)
        self.stem = nn.Sequential(conv, norm3d(config.norm, config.stem_channels), nn.ReLU())
        c_in = config.stem_channels
        for index, (c_out, n_blocks) in enumerate(zip(config.channels, config.blocks, strict=True)):
            stride = 1 if index == 0 else 2
            blocks = [BasicBlock3D(c_in, c_out, stride, config.norm)]
            blocks += [BasicBlock3D(c_out, c_out, 1, config.norm) for _ in range(n_blocks - 1)]
            self.add_module(f"stage{index + 1}", nn.Sequential(*blocks))
            c_in = c_out
        self.out_features = c_in
        for module in self.modules():
            if isinstance(module, nn.Conv3d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for child in self.children():
            x = child(x)
        return x.mean(dim=(2, 3, 4))
