"""The multi-view, multi-task network: one backbone for every view, a fusion, one head
per task.

Fusion is a symmetric function of the per-view features (mean, max, or attention
pooling whose weights come from each view's own features), so the prediction does not
depend on the order in which the cameras are listed, and a clip seen by fewer or more
cameras than in training still gets a prediction. Heads are sized by each task's
vocabulary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from trainer.configs.video_schema import VideoModelConfig
from trainer.video.model.resnet3d import ResNet3D


class ViewFusion(nn.Module):
    """``(B, V, D)`` → ``(B, D)``, invariant to permutations of the view axis."""

    def __init__(self, kind: str, features: int) -> None:
        super().__init__()
        self.kind = kind
        self.score = nn.Linear(features, 1) if kind == "attention" else None

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.kind == "max":
            return features.max(dim=1).values
        if self.score is not None:
            weights = torch.softmax(self.score(features).squeeze(-1), dim=1)  # (B, V)
            return (weights.unsqueeze(-1) * features).sum(dim=1)
        return features.mean(dim=1)


def task_head(features: int, classes: int, hidden: int, dropout: float) -> nn.Module:
    layers: list[nn.Module] = [nn.Dropout(dropout)] if dropout > 0 else []
    if hidden:
        layers += [nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, classes)]
    else:
        layers.append(nn.Linear(features, classes))
    return nn.Sequential(*layers)


class MultiViewNet(nn.Module):
    """``core`` (the shared ResNet3D), ``fusion``, ``heads[task]``: clips → logits per task."""

    def __init__(self, config: VideoModelConfig, vocabularies: Mapping[str, Sequence[str]]):
        super().__init__()
        self.core = ResNet3D(config.backbone)
        self.fusion = ViewFusion(config.fusion, self.core.out_features)
        self.heads = nn.ModuleDict(
            {
                task: task_head(
                    self.core.out_features, len(classes), config.head_hidden, config.head_dropout
                )
                for task, classes in vocabularies.items()
            }
        )

    def view_features(self, video: torch.Tensor) -> torch.Tensor:
        """``(B, V, C, T, H, W)`` → ``(B, V, D)``: every view through the same backbone."""
        b, v = video.shape[:2]
        return self.core(video.reshape(b * v, *video.shape[2:])).reshape(b, v, -1)

    def forward(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        fused = self.fusion(self.view_features(video))
        return {task: head(fused) for task, head in self.heads.items()}
