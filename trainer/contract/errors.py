"""Errors the trainer reports to users as one line (file, field, value, what to do)."""

from __future__ import annotations

from trainer.contract import exit_codes


class CorejobTrainError(Exception):
    """Base class: ``str()`` is the one-line message, ``exit_code`` the process exit code."""

    exit_code = exit_codes.UNEXPECTED_ERROR


class ConfigError(CorejobTrainError):
    """A configuration or usage error: permanent, never retried by the operator."""

    exit_code = exit_codes.CONFIG_ERROR

    def __init__(self, source: str, key: str, message: str) -> None:
        self.source, self.key = source, key
        super().__init__(f"{source}: {key}: {message}")


class TrainingDiverged(CorejobTrainError):
    """The loss became NaN or infinite: the same settings would diverge again (not retried)."""

    def __init__(self, step: int, loss: float) -> None:
        super().__init__(
            f"training diverged: train loss is {loss} at step {step}; lower --learning_rate,"
            " lengthen --warmup_epochs or set --gradient_clip_val"
        )
