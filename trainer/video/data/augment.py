"""GPU-side augmentation of training clips (never validation), after the device transfer.

Per view and sample: the shared stimulus augmentations of ``trainer.data.augment``
(temporal jitter, brightness, contrast; one definition for both families), then the
video-only ones: pixel noise, a random spatial shift (the same for every frame, so
motion is untouched) and view dropout (a dropped view is replaced by another view of
the same clip, so the fusion still averages real views). No flips or rotations: they
would change the motion label. ``--aggressive_augmentation`` swaps the dataset config's
set for ``trainer.configs.video_schema.AGGRESSIVE``.

The random stream is re-seeded every step from (seed, rank, step) by
``trainer.callbacks.checkpointing.StepSeededRandomness`` (``reseed``), so a resumed run
draws what an uninterrupted one would.
"""

from __future__ import annotations

import torch

from trainer.configs.video_schema import VideoAugmentConfig
from trainer.data.augment import AugmentationConfig, augment_stimulus


def _shared_part(config: VideoAugmentConfig) -> AugmentationConfig:
    return AugmentationConfig(
        enabled=config.enabled,
        temporal_jitter=config.temporal_jitter,
        brightness=config.brightness,
        contrast=config.contrast,
        prob=config.prob,
    )


def _shift(video: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each clip ``(N, C, T, H, W)`` by up to ``max_shift`` pixels (edge repeated)."""
    n, _, _, h, w = video.shape
    dev = generator.device
    dy = torch.randint(-max_shift, max_shift + 1, (n,), generator=generator, device=dev)
    dx = torch.randint(-max_shift, max_shift + 1, (n,), generator=generator, device=dev)
    rows = (torch.arange(h, device=dev)[None, :] - dy[:, None]).clamp(0, h - 1).to(video.device)
    cols = (torch.arange(w, device=dev)[None, :] - dx[:, None]).clamp(0, w - 1).to(video.device)
    video = torch.gather(video, 3, rows.view(n, 1, 1, h, 1).expand_as(video))
    return torch.gather(video, 4, cols.view(n, 1, 1, 1, w).expand_as(video))


def _drop_views(video: torch.Tensor, rate: float, generator: torch.Generator) -> torch.Tensor:
    """``(B, V, ...)``: each view, with probability ``rate``, becomes a copy of a kept one."""
    b, v = video.shape[:2]
    if v < 2:
        return video
    dev = generator.device
    dropped = torch.rand(b, v, generator=generator, device=dev) < rate
    dropped[dropped.all(dim=1)] = False  # keep at least one view of every clip
    scores = torch.rand(b, v, generator=generator, device=dev) + (~dropped).float()
    donor = scores.argmax(dim=1, keepdim=True).expand(b, v)  # a random kept view
    source = torch.where(dropped, donor, torch.arange(v, device=dev).expand(b, v))
    index = source.to(video.device).view(b, v, *([1] * (video.dim() - 2))).expand_as(video)
    return torch.gather(video, 1, index)


def augment_clips(
    video: torch.Tensor, config: VideoAugmentConfig, generator: torch.Generator
) -> torch.Tensor:
    """An augmented copy of float clips ``(B, V, C, T, H, W)``; the input is not modified."""
    if not config.enabled or config.prob <= 0:
        return video
    b, v = video.shape[:2]
    flat = video.reshape(b * v, *video.shape[2:])
    out = augment_stimulus(flat, _shared_part(config), generator)
    if config.noise > 0:
        noise = torch.randn(out.shape, generator=generator, device=generator.device)
        out = out + config.noise * noise.to(out.device, out.dtype)
    if config.shift > 0:
        out = _shift(out, config.shift, generator)
    out = out.reshape(video.shape)
    if config.view_dropout > 0:
        out = _drop_views(out, config.view_dropout, generator)
    return out


class ClipAugmenter:
    """Training-batch augmentation with its own, re-seedable random stream."""

    def __init__(self, config: VideoAugmentConfig, seed: int = 0) -> None:
        self.config = config
        self.seed = seed
        self._generator: torch.Generator | None = None

    def reseed(self, seed: int) -> None:
        self.seed = seed
        self._generator = None

    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        if self._generator is None or self._generator.device != video.device:
            self._generator = torch.Generator(device=video.device)
            self._generator.manual_seed(self.seed)
        return augment_clips(video, self.config, self._generator)
