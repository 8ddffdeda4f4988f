"""The model zoo (VisionCore's vocabulary) and the assembled multi-session network."""

from trainer.models.build import build_model
from trainer.models.model import MultiDatasetV1Model

__all__ = ["MultiDatasetV1Model", "build_model"]
