"""corejob trainer: multi-dataset models of visual cortex, trained with PyTorch Lightning."""

from corejob import __version__

__all__ = ["__version__"]
