"""Model components (registry) and the assembled multi-session network."""

from trainer.models.model import MultiReadoutModel, VisionCore, build_model

__all__ = ["MultiReadoutModel", "VisionCore", "build_model"]
