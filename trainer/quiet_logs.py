"""Trainer logs a person can read: timestamped, without Lightning's tips and known noise.

A job's log is what a user reads when something goes wrong, often hours later and next to
other replicas' logs. Lightning prints advertising tips (``💡 Tip: … litlogger``), a line
about estimating stepping batches, and a ``_pytree`` deprecation warning on every run;
none of it is actionable, and none of Lightning's lines carry a time. This module routes
Lightning's loggers and Python warnings through one timestamped handler that drops the
known noise (listed here, so a new kind of message is never hidden by accident).
``COREJOB_*`` protocol lines are printed directly and never pass through here: their
format is a contract (:mod:`trainer.contract`).
"""

from __future__ import annotations

import logging
import re
import sys
import warnings
from typing import TextIO

LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%z"
LIGHTNING_LOGGERS = ("lightning.pytorch", "pytorch_lightning", "lightning.fabric",
                     "lightning_fabric")  # fmt: skip
# Messages that say nothing actionable about the run (matched with re.search).
NOISE = (
    re.compile(r"💡 Tip:|litlogger|LitLogger"),
    re.compile(r"^Loading `train_dataloader` to estimate number of stepping batches"),
)
# Deprecations inside our dependencies, not in code we can change.
KNOWN_WARNINGS = (r"`isinstance\(treespec, LeafSpec\)` is deprecated",)


class DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(pattern.search(message) for pattern in NOISE)


def log_handler(stream: TextIO | None = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT, TIME_FORMAT))
    handler.addFilter(DropNoise())
    return handler


def quiet_logs(stream: TextIO | None = None) -> None:
    """Route Lightning's loggers and Python warnings through one quiet, timestamped handler.

    Lightning is imported first: on import it attaches its own handler, which this replaces
    (otherwise every line would be printed twice)."""
    import pytorch_lightning  # noqa: F401  (attaches its handlers on import)

    handler = log_handler(stream)
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False
    for pattern in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    warned = logging.getLogger("py.warnings")
    warned.handlers = [handler]
    warned.propagate = False

    def one_line(message, category, filename, lineno, file=None, line=None) -> None:
        # Python's format adds the source line below: two lines per warning in the log.
        warned.warning("%s: %s (%s:%s)", category.__name__, message, filename, lineno)

    warnings.showwarning = one_line
