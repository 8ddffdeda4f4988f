"""Trained models from checkpoint files, ours or VisionCore's: import, evaluate, predict.

``layout`` maps a VisionCore state dict onto our module names (pure), ``files`` reads a
checkpoint safely and says what it holds, ``restore`` builds the model and restores every
tensor, ``evaluate`` and ``predict`` are the ``corejob-train`` subcommands' shells.
"""
