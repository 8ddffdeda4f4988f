"""The progress line ``COREJOB_PROGRESS {json}``: how far a running job is, read from its log.

A job that trains for hours must show life long before its result line: rank 0 prints
one progress record every few seconds (``--progress_every_seconds``), one right after
the first training step and one at the end. The controller (``submit --wait``,
``status``, ``sweep``) reads the newest record from the master's log tail, so it needs
no access to the run volume and no side channel. This module is both sides of that
clause, like :mod:`trainer.contract.result`: the trainer writes with
:func:`progress_line`, the controller reads with :func:`parse_progress_line` /
:func:`last_progress`. Nothing here imports torch or Lightning.

Record fields (``null`` when not known yet): ``time`` (ISO 8601 UTC, milliseconds),
``phase`` (``train``, ``validate``, ``end``), ``epoch`` (1-based, the one in progress) and
``max_epochs``, ``step`` (optimizer steps so far) and ``total_steps`` (the planned end,
re-planned by a time budget), ``train_loss`` (last step), ``samples_per_s`` (all ranks,
training only), ``eta_s`` (to ``total_steps``), ``val_bps_overall`` and ``val_bps``
(per session, from the last validation, of epoch ``val_epoch``; for the video family
``metric`` names its metric and ``val_metric`` holds it instead), ``attempt`` and
``world_size``.
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

PROGRESS_LINE_PREFIX = "COREJOB_PROGRESS "
PHASES = ("train", "validate", "end")
REQUIRED = ("time", "phase", "step")


def utc_timestamp(now: datetime.datetime | None = None) -> str:
    """``2025-01-31T12:00:00.123Z``: sortable as text, so "newer" is a string comparison."""
    now = now or datetime.datetime.now(datetime.UTC)
    text = now.astimezone(datetime.UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def _clean(value: Any) -> Any:
    """JSON has no NaN or infinity: such numbers become ``null`` (nested too)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    return value


def progress_line(record: Mapping[str, Any]) -> str:
    """The single stdout line for ``record`` (compact JSON, no NaN, no newline)."""
    missing = [key for key in REQUIRED if key not in record]
    if missing:
        raise ValueError(f"progress record lacks {missing}")
    return PROGRESS_LINE_PREFIX + json.dumps(_clean(record), separators=(",", ":"))


def parse_progress_line(line: str) -> dict[str, Any] | None:
    """The record of one progress line, or None (another line, truncated, malformed).

    As for the result line, the marker must start the line (after whitespace only), so a
    traceback or a ``[master-0]`` prefix quoting it does not count.
    """
    text = line.strip()
    marker = PROGRESS_LINE_PREFIX.strip()
    if not text.startswith(marker):
        return None
    try:
        record = json.loads(text[len(marker) :])
    except ValueError:
        return None
    if not isinstance(record, dict) or any(key not in record for key in REQUIRED):
        return None
    if not isinstance(record["time"], str) or not isinstance(record["step"], int):
        return None
    return record


def last_progress(lines: Iterable[str]) -> dict[str, Any] | None:
    """The newest well-formed record among ``lines`` (a log tail), None when there is none."""
    found = None
    for line in lines:
        record = parse_progress_line(line)
        if record is not None:
            found = record
    return found


def is_newer(record: Mapping[str, Any], than: Mapping[str, Any] | None) -> bool:
    """Whether ``record`` was written after ``than`` (None: nothing seen yet); within one
    millisecond, the one further on in training."""
    if than is None:
        return True
    return (str(record["time"]), int(record["step"])) > (str(than["time"]), int(than["step"]))
