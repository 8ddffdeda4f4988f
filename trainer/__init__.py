"""corejob trainer: multi-dataset models of visual cortex, trained with PyTorch Lightning."""

__version__ = "0.1.0"
