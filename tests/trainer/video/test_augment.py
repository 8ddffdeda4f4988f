"""GPU-side clip augmentation: what each part may and may not change."""

from __future__ import annotations

from dataclasses import replace

import torch

from trainer.configs.video_schema import AGGRESSIVE, VideoAugmentConfig
from trainer.video.data.augment import ClipAugmenter, augment_clips

OFF = VideoAugmentConfig(temporal_jitter=0, brightness=0.0, contrast=0.0)


def clips() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(4, 3, 3, 6, 16, 16)  # (B, V, C, T, H, W)


def test_view_dropout_replaces_views_by_kept_views_of_the_same_clip():
    video = clips()
    out = augment_clips(video, replace(OFF, view_dropout=0.6), torch.Generator().manual_seed(1))
    for b in range(video.shape[0]):
        sources = [
            next(v for v in range(3) if torch.equal(out[b, view], video[b, v])) for view in range(3)
        ]  # every output view is one of the clip's own views
        assert any(sources[view] == view for view in range(3))  # at least one view kept
    assert not torch.equal(out, video)


def test_shift_moves_every_frame_of_a_view_alike():
    video = torch.zeros(2, 2, 1, 4, 16, 16)
    video[..., 6:10, 6:10] = 1.0  # a square in the middle of every frame
    out = augment_clips(video, replace(OFF, shift=3), torch.Generator().manual_seed(2))
    for b, v in ((0, 0), (0, 1), (1, 0), (1, 1)):
        frames = out[b, v, 0]
        assert all(torch.equal(frames[t], frames[0]) for t in range(4))  # motion untouched
        assert frames[0].sum() == 16  # moved, not cut: the square fits after a 3 px shift
    assert not torch.equal(out, video)


def test_aggressive_set_is_reproducible_per_seed_and_leaves_the_input_alone():
    video = clips()
    before = video.clone()
    first, second = ClipAugmenter(AGGRESSIVE, seed=5), ClipAugmenter(AGGRESSIVE, seed=5)
    a, b = first(video), second(video)
    torch.testing.assert_close(a, b)
    assert torch.equal(video, before) and not torch.allclose(a, video)
    first.reseed(6)
    assert not torch.allclose(first(video), a)
    assert torch.equal(augment_clips(video, replace(OFF, enabled=False), None), video)
