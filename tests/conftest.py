"""Shared pytest setup: never let W&B touch the network from a test."""

import os

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")
