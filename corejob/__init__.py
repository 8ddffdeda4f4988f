"""corejob controller: render, submit, track and collect PyTorchJobs (no torch needed)."""

__version__ = "0.1.0"
