"""The multi-view network: view-order invariant fusion, heads sized by vocabulary, both
ResNet3D layouts."""

from __future__ import annotations

import pytest
import torch

from trainer.configs.video_schema import FUSIONS, VideoModelConfig
from trainer.video.model.multiview import MultiViewNet
from trainer.video.model.resnet3d import ResNet3D

VOCABULARIES = {"shape": ["disk", "square", "cross"], "motion": ["right", "left", "down", "up"]}


@pytest.mark.parametrize("fusion", FUSIONS)
def test_fusion_is_invariant_to_the_order_of_views(small_model_config, fusion):
    torch.manual_seed(0)
    net = MultiViewNet(VideoModelConfig.from_dict({**small_model_config, "fusion": fusion}),
                       VOCABULARIES).eval()  # fmt: skip
    video = torch.randn(2, 3, 3, 6, 16, 16)
    with torch.no_grad():
        reference = net(video)
        for order in ([2, 0, 1], [1, 2, 0], [2, 1, 0]):
            permuted = net(video[:, order])
            for task in VOCABULARIES:
                torch.testing.assert_close(permuted[task], reference[task], rtol=1e-5, atol=1e-5)
        # ...but the views do matter: replacing one changes the prediction
        other = video.clone()
        other[:, 0] = torch.randn_like(other[:, 0])
        assert not torch.allclose(net(other)["shape"], reference["shape"], atol=1e-4)


def test_heads_are_sized_by_each_task_vocabulary(small_model_config):
    net = MultiViewNet(VideoModelConfig.from_dict(small_model_config), VOCABULARIES)
    out = net(torch.randn(2, 2, 3, 6, 16, 16))
    assert {task: tuple(v.shape) for task, v in out.items()} == {"shape": (2, 3), "motion": (2, 4)}


def test_r3d_18_layout_has_its_stages_strides_and_width():
    config = VideoModelConfig.from_dict(
        {"backbone": {"depth": "18", "stem_channels": 64, "channels": [64, 128, 256, 512],
                      "blocks": [2, 2, 2, 2], "norm": "batch"}}
    )  # fmt: skip
    core = ResNet3D(config.backbone)
    assert [name for name, _ in core.named_children()] == [
        "stem", "stage1", "stage2", "stage3", "stage4",
    ]  # fmt: skip
    assert core.stem[0].kernel_size == (3, 7, 7) and core.stem[0].stride == (1, 2, 2)
    assert [len(getattr(core, f"stage{i}")) for i in range(1, 5)] == [2, 2, 2, 2]
    n_params = sum(p.numel() for p in core.parameters())
    assert 33_000_000 < n_params < 33_300_000  # r3d-18's backbone: 33.2 M parameters
    assert core(torch.randn(1, 3, 8, 32, 32)).shape == (1, 512)
