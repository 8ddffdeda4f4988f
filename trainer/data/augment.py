"""On-device stimulus augmentation for training batches (never validation).

Configured in a dataset config's ``augmentation`` section; absent or ``enabled: false``
means off (the default). It runs on the device after the batch transfer, so it costs no
data-loader time and needs no extra host memory:

```yaml
augmentation:
  enabled: true
  temporal_jitter: 1        # shift the lag window by up to +-1 frame (edge frames repeat)
  brightness: 0.1           # add U(-0.1, 0.1) per sample
  contrast: 0.2             # scale deviations from the sample mean by U(0.8, 1.2)
  prob: 1.0                 # fraction of samples augmented
```

Responses are never changed: augmentations model nuisance variation of the stimulus that
the neurons' responses should be robust to (small latency jitter, luminance changes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from trainer.contract.errors import ConfigError

_FIELDS = ("enabled", "temporal_jitter", "brightness", "contrast", "prob")


@dataclass(frozen=True)
class AugmentationConfig:
    """Validated ``augmentation`` section."""

    enabled: bool = False
    temporal_jitter: int = 0
    brightness: float = 0.0
    contrast: float = 0.0
    prob: float = 1.0

    @property
    def active(self) -> bool:
        jitter = self.temporal_jitter or self.brightness or self.contrast
        return bool(self.enabled and jitter and self.prob > 0)

    @classmethod
    def from_dict(cls, section: Any, source: str = "dataset config") -> AugmentationConfig:
        if section is None:
            return cls()
        if not isinstance(section, dict):
            raise ConfigError(source, "augmentation", f"must be a mapping, got {section!r}")
        unknown = sorted(set(section) - set(_FIELDS))
        if unknown:
            raise ConfigError(source, f"augmentation.{unknown[0]}", f"unknown; allowed {_FIELDS}")
        cfg = cls(
            enabled=bool(section.get("enabled", True)),
            temporal_jitter=_number(section, "temporal_jitter", 0, int, source),
            brightness=_number(section, "brightness", 0.0, float, source),
            contrast=_number(section, "contrast", 0.0, float, source),
            prob=_number(section, "prob", 1.0, float, source),
        )
        if cfg.contrast >= 1.0 or cfg.prob > 1.0:
            raise ConfigError(source, "augmentation", "contrast must be < 1 and prob <= 1")
        return cfg


def _number(section: dict, key: str, default: Any, kind: type, source: str) -> Any:
    value = section.get(key, default)
    try:
        value = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(source, f"augmentation.{key}", f"{value!r} is not a number") from None
    if value < 0:
        raise ConfigError(source, f"augmentation.{key}", f"{value!r} must be >= 0")
    return value


def augment_stimulus(
    stim: torch.Tensor, cfg: AugmentationConfig, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Return an augmented copy of ``stim`` ``(B, C, L, H, W)``; the input is not modified."""
    if not cfg.active:
        return stim
    b = stim.shape[0]
    gen_device = generator.device if generator is not None else stim.device

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator, device=gen_device).to(stim.device)

    chosen = (uniform(b) < cfg.prob).to(stim.dtype).view(b, 1, 1, 1, 1)
    out = stim
    if cfg.temporal_jitter > 0:
        shifts = torch.floor(uniform(b) * (2 * cfg.temporal_jitter + 1)).long()
        out = _shift_lags(out, shifts - cfg.temporal_jitter)
    if cfg.contrast > 0:
        scale = 1.0 + (2 * uniform(b) - 1) * cfg.contrast
        mean = out.mean(dim=(1, 2, 3, 4), keepdim=True)
        out = mean + (out - mean) * scale.view(b, 1, 1, 1, 1).to(out.dtype)
    if cfg.brightness > 0:
        offset = (2 * uniform(b) - 1) * cfg.brightness
        out = out + offset.view(b, 1, 1, 1, 1).to(out.dtype)
    return chosen * out + (1 - chosen) * stim


def _shift_lags(stim: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Shift each sample's lag axis by ``shifts[i]`` frames, repeating the edge frame."""
    n_lags = stim.shape[2]
    lag = torch.arange(n_lags, device=stim.device).view(1, n_lags)
    source = (lag - shifts.to(stim.device).view(-1, 1)).clamp(0, n_lags - 1)  # (B, L)
    index = source.view(stim.shape[0], 1, n_lags, 1, 1).expand_as(stim)
    return torch.gather(stim, 2, index)


class BatchAugmenter:
    """Applies per-dataset augmentation to a grouped batch (``list[dict]``) in training.

    ``configs[dataset_idx]`` is that session's config (sessions inherit the parent
    dataset config's section). Validation batches pass through untouched: the caller
    passes ``training``, and this class refuses to augment otherwise.
    """

    def __init__(self, configs: Sequence[AugmentationConfig], seed: int = 0):
        self.configs = list(configs)
        self.seed = seed
        self._generator: torch.Generator | None = None

    @property
    def any_active(self) -> bool:
        return any(c.active for c in self.configs)

    def __call__(self, batch: list[dict], training: bool) -> list[dict]:
        if not training or not self.any_active:
            return batch
        out = []
        for group in batch:
            cfg = self.configs[group["dataset_idx"]]
            if cfg.active:
                gen = self._generator_for(group["stim"].device)
                group = {**group, "stim": augment_stimulus(group["stim"], cfg, gen)}
            out.append(group)
        return out

    def reseed(self, seed: int) -> None:
        """Restart the random stream (per training step: a resumed run draws the same)."""
        self.seed = seed
        self._generator = None

    def _generator_for(self, device: torch.device) -> torch.Generator:
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device)
            self._generator.manual_seed(self.seed)
        return self._generator
