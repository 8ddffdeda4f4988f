"""The video family's config schemas: model (ResNet3D, fusion, heads) and dataset (views,
clips, tasks). Pure Python, no torch, so the controller validates a config with exactly the
trainer's rules before it submits anything.

A video config says ``family: video`` at its top level (``trainer.configs.families``);
every other key is checked here, and an unknown or bad one is one line naming the file,
the field and the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from trainer.contract.errors import ConfigError

# The synthetic generator's vocabularies (trainer.video.data.synthetic draws these).
VOCABULARIES: dict[str, tuple[str, ...]] = {
    "shape": ("disk", "square", "triangle", "cross", "ring"),
    "motion": ("right", "left", "down", "up"),
    "colour": ("red", "green", "blue", "yellow"),
}
DEPTHS = ("small", "18")
FUSIONS = ("mean", "max", "attention")
NORMS = ("batch", "group")
MODEL_KEYS = ("family", "model_type", "description", "backbone", "fusion", "head", "name")
BACKBONE_KEYS = ("depth", "stem_channels", "stem_temporal_stride", "channels", "blocks", "norm")
HEAD_KEYS = ("hidden", "dropout")
DATASET_KEYS = (
    "family", "description", "name", "views", "frames", "image_size", "n_train", "n_val",
    "pixel_noise", "seed", "tasks", "augmentation", "data_root",
)  # fmt: skip
TASK_KEYS = ("classes", "imbalance", "label_noise")
AUGMENT_KEYS = ("enabled", "temporal_jitter", "brightness", "contrast", "noise", "shift",
                "view_dropout", "prob")  # fmt: skip


def _check_keys(section: Mapping[str, Any], allowed: tuple[str, ...], source: str, where: str):
    if not isinstance(section, Mapping):
        raise ConfigError(source, where or "(top level)", f"must be a mapping, got {section!r}")
    unknown = sorted(set(section) - set(allowed))
    if unknown:
        name = f"{where}.{unknown[0]}" if where else unknown[0]
        raise ConfigError(source, name, f"unknown key; allowed: {', '.join(allowed)}")


def _number(section: Mapping, key: str, default: Any, kind: type, source: str, where: str,
            low: float | None = None, high: float | None = None) -> Any:  # fmt: skip
    """``section[key]`` as ``kind`` within [low, high], or one line naming it."""
    name = f"{where}.{key}" if where else key
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(source, name, f"{value!r} is not a number")
    if kind is int and value != int(value):
        raise ConfigError(source, name, f"{value!r} is not an integer")
    value = kind(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError(source, name, f"{value!r} must be in [{low}, {high}]")
    return value


def _int_list(section: Mapping, key: str, default: list[int], source: str, where: str):
    value = section.get(key, default)
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
    ):
        raise ConfigError(source, f"{where}.{key}", f"{value!r} must be a list of integers >= 1")
    return tuple(value)


def _choice(section: Mapping, key: str, default: str, choices: tuple[str, ...], source, where):
    value = section.get(key, default)
    if str(value) not in choices:
        name = f"{where}.{key}" if where else key
        raise ConfigError(source, name, f"{value!r} unknown; allowed: {', '.join(choices)}")
    return str(value)


@dataclass(frozen=True)
class BackboneConfig:
    """ResNet3D: ``small`` (3x3x3 stem, CPU-sized) or ``18`` (r3d-18's 3x7x7 strided stem)."""

    depth: str = "small"
    stem_channels: int = 16
    stem_temporal_stride: int = 1  # 2 halves every later layer's cost (CPU-sized models)
    channels: tuple[int, ...] = (16, 32, 64)
    blocks: tuple[int, ...] = (1, 1, 1)
    norm: str = "group"


@dataclass(frozen=True)
class VideoModelConfig:
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    fusion: str = "mean"
    head_hidden: int = 0
    head_dropout: float = 0.0
    name: str = "video model"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "model config") -> VideoModelConfig:
        _check_keys(data, MODEL_KEYS, source, "")
        back = data.get("backbone") or {}
        _check_keys(back, BACKBONE_KEYS, source, "backbone")
        channels = _int_list(back, "channels", [16, 32, 64], source, "backbone")
        blocks = _int_list(back, "blocks", [1] * len(channels), source, "backbone")
        if len(blocks) != len(channels):
            raise ConfigError(source, "backbone.blocks", f"{list(blocks)} needs one per channel")
        backbone = BackboneConfig(
            depth=_choice(back, "depth", "small", DEPTHS, source, "backbone"),
            stem_channels=_number(back, "stem_channels", 16, int, source, "backbone", 1, 1024),
            stem_temporal_stride=_number(
                back, "stem_temporal_stride", 1, int, source, "backbone", 1, 2
            ),
            channels=channels,
            blocks=blocks,
            norm=_choice(back, "norm", "group", NORMS, source, "backbone"),
        )
        head = data.get("head") or {}
        _check_keys(head, HEAD_KEYS, source, "head")
        return cls(
            backbone=backbone,
            fusion=_choice(data, "fusion", "mean", FUSIONS, source, ""),
            head_hidden=_number(head, "hidden", 0, int, source, "head", 0, 8192),
            head_dropout=_number(head, "dropout", 0.0, float, source, "head", 0.0, 0.9),
            name=str(data.get("name", source)),
        )


@dataclass(frozen=True)
class TaskConfig:
    """One label vocabulary: its classes, how skewed (largest/smallest class probability,
    geometric in between) and how noisy (a label is replaced by another class, uniformly)."""

    name: str
    classes: tuple[str, ...]
    imbalance: float = 1.0
    label_noise: float = 0.0

    def class_probabilities(self) -> tuple[float, ...]:
        k = len(self.classes)
        weights = [self.imbalance ** (-(i / (k - 1))) for i in range(k)]
        total = sum(weights)
        return tuple(w / total for w in weights)


@dataclass(frozen=True)
class VideoAugmentConfig:
    """GPU-side augmentation of training clips (``aggressive`` replaces it with
    :data:`AGGRESSIVE`)."""

    enabled: bool = True
    temporal_jitter: int = 1
    brightness: float = 0.1
    contrast: float = 0.1
    noise: float = 0.0
    shift: int = 0
    view_dropout: float = 0.0
    prob: float = 1.0

    @classmethod
    def from_dict(cls, data: Any, source: str) -> VideoAugmentConfig:
        if data is None:
            return cls()
        _check_keys(data, AUGMENT_KEYS, source, "augmentation")
        w = "augmentation"
        return cls(
            enabled=bool(data.get("enabled", True)),
            temporal_jitter=_number(data, "temporal_jitter", 1, int, source, w, 0, 8),
            brightness=_number(data, "brightness", 0.1, float, source, w, 0.0, 1.0),
            contrast=_number(data, "contrast", 0.1, float, source, w, 0.0, 0.99),
            noise=_number(data, "noise", 0.0, float, source, w, 0.0, 1.0),
            shift=_number(data, "shift", 0, int, source, w, 0, 16),
            view_dropout=_number(data, "view_dropout", 0.0, float, source, w, 0.0, 0.9),
            prob=_number(data, "prob", 1.0, float, source, w, 0.0, 1.0),
        )


AGGRESSIVE = VideoAugmentConfig(
    temporal_jitter=2, brightness=0.25, contrast=0.3, noise=0.1, shift=3, view_dropout=0.25
)


@dataclass(frozen=True)
class VideoDatasetConfig:
    """Synthetic multi-view clips: ``views`` cameras see ``frames`` frames of
    ``image_size``² RGB each; one label per task."""

    name: str
    tasks: tuple[TaskConfig, ...]
    views: int = 3
    frames: int = 8
    image_size: int = 24
    n_train: int = 2048
    n_val: int = 512
    pixel_noise: float = 0.2
    seed: int = 0
    augmentation: VideoAugmentConfig = field(default_factory=VideoAugmentConfig)
    data_root: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "dataset config"):
        _check_keys(data, DATASET_KEYS, source, "")
        tasks = data.get("tasks")
        if not isinstance(tasks, Mapping) or not tasks:
            raise ConfigError(source, "tasks", f"{tasks!r}: name at least one of {_task_names()}")
        return cls(
            name=str(data.get("name", source)),
            tasks=tuple(_task(name, spec, source) for name, spec in tasks.items()),
            views=_number(data, "views", 3, int, source, "", 1, 8),
            frames=_number(data, "frames", 8, int, source, "", 4, 64),
            image_size=_number(data, "image_size", 24, int, source, "", 16, 256),
            n_train=_number(data, "n_train", 2048, int, source, "", 8, 10_000_000),
            n_val=_number(data, "n_val", 512, int, source, "", 8, 10_000_000),
            pixel_noise=_number(data, "pixel_noise", 0.2, float, source, "", 0.0, 2.0),
            seed=_number(data, "seed", 0, int, source, "", 0, 2**31),
            augmentation=VideoAugmentConfig.from_dict(data.get("augmentation"), source),
            data_root=data.get("data_root"),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data (checkpoints, hparams)."""
        import dataclasses

        return dataclasses.asdict(self)


def _task_names() -> str:
    return ", ".join(VOCABULARIES)


def _task(name: str, spec: Any, source: str) -> TaskConfig:
    where = f"tasks.{name}"
    if name not in VOCABULARIES:
        raise ConfigError(source, where, f"unknown task; the generator draws {_task_names()}")
    spec = spec or {}
    _check_keys(spec, TASK_KEYS, source, where)
    vocabulary = VOCABULARIES[name]
    classes = spec.get("classes", list(vocabulary))
    if not isinstance(classes, list) or len(classes) < 2 or len(set(classes)) != len(classes):
        raise ConfigError(source, f"{where}.classes", f"{classes!r}: need >= 2 distinct names")
    for label in classes:
        if label not in vocabulary:
            raise ConfigError(
                source, f"{where}.classes", f"{label!r} unknown; allowed: {', '.join(vocabulary)}"
            )
    k = len(classes)
    noise = _number(spec, "label_noise", 0.0, float, source, where, 0.0, 1.0)
    if noise >= (k - 1) / k:
        raise ConfigError(
            source, f"{where}.label_noise", f"{noise} leaves no signal; must be < {(k - 1) / k:.3f}"
        )
    return TaskConfig(
        name=name,
        classes=tuple(classes),
        imbalance=_number(spec, "imbalance", 1.0, float, source, where, 1.0, 1000.0),
        label_noise=noise,
    )
