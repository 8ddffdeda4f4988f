"""Model configs: the schema lives in ``trainer.configs.model_schema`` (no torch there, so
the controller validates with the same code); this module re-exports it for the trainer."""

from __future__ import annotations

from trainer.configs import MODELS, config_dir
from trainer.configs.model_schema import (
    available_model_configs,
    load_model_config,
    reference_markdown,
    validate_model_config,
)

CONFIG_DIR = config_dir(MODELS)

__all__ = [
    "CONFIG_DIR",
    "available_model_configs",
    "load_model_config",
    "reference_markdown",
    "validate_model_config",
]
