"""Augmentation: off by default, training only, each transform does what it says."""

import pytest
import torch

from trainer.contract.errors import ConfigError
from trainer.data.augment import AugmentationConfig, BatchAugmenter, augment_stimulus


def stim(b: int = 8, lags: int = 5) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(b, 1, lags, 4, 4)


def test_off_by_default_and_when_disabled():
    assert not AugmentationConfig.from_dict(None).active
    assert not AugmentationConfig.from_dict({"enabled": False, "brightness": 0.3}).active
    x = stim()
    assert augment_stimulus(x, AugmentationConfig()) is x


def test_temporal_jitter_shifts_lag_window_with_edge_repeat():
    x = torch.arange(5.0).view(1, 1, 5, 1, 1).expand(64, 1, 5, 2, 2).contiguous()
    cfg = AugmentationConfig(enabled=True, temporal_jitter=1)
    out = augment_stimulus(x, cfg, torch.Generator().manual_seed(1))
    seqs = {tuple(o[0, :, 0, 0].tolist()) for o in out}
    assert seqs <= {(0, 1, 2, 3, 4), (0, 0, 1, 2, 3), (1, 2, 3, 4, 4)}
    assert len(seqs) == 3  # all three shifts occur in 64 samples
    assert torch.equal(x[:, 0, :, 0, 0], torch.arange(5.0).expand(64, 5))  # input untouched


def test_brightness_and_contrast_jitter():
    x = stim(256)
    bright = augment_stimulus(x, AugmentationConfig(enabled=True, brightness=0.5))
    offsets = (bright - x).mean(dim=(1, 2, 3, 4))
    assert offsets.abs().max() <= 0.5 + 1e-6 and offsets.std() > 0.1
    contrast = augment_stimulus(x, AugmentationConfig(enabled=True, contrast=0.4))
    ratio = contrast.std(dim=(1, 2, 3, 4)) / x.std(dim=(1, 2, 3, 4))
    assert ratio.min() >= 0.6 - 1e-4 and ratio.max() <= 1.4 + 1e-4 and ratio.std() > 0.05


def test_batch_augmenter_never_touches_validation_batches():
    cfg = AugmentationConfig(enabled=True, temporal_jitter=2, brightness=0.5, contrast=0.5)
    aug = BatchAugmenter([cfg, AugmentationConfig()], seed=0)
    batch = [{"stim": stim(), "dataset_idx": 0}, {"stim": stim(), "dataset_idx": 1}]
    assert aug(batch, training=False) is batch
    out = aug(batch, training=True)
    assert not torch.equal(out[0]["stim"], batch[0]["stim"])
    assert torch.equal(out[1]["stim"], batch[1]["stim"])  # session without augmentation


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ({"brightnes": 0.1}, "augmentation.brightnes"),
        ({"temporal_jitter": -1}, "temporal_jitter"),
        ({"contrast": "lots"}, "augmentation.contrast"),
        ([1], "augmentation"),
    ],
)
def test_bad_sections_name_the_field(section, field):
    with pytest.raises(ConfigError, match=field):
        AugmentationConfig.from_dict(section, "ds.yaml")
