"""When each part of a replica's log was written, so that ``logs --since`` can cut by time.

Replicas write their logs directly (no pipe through the supervisor, so output is never
lost or blocked if the supervisor dies) and the lines carry no timestamps. Instead the
supervisor samples every log's size twice a second and appends ``<size> <unix time>`` to
``<replica>.index`` whenever it grew: every byte below ``size`` was written by then.
``--since`` is therefore exact to within one sampling interval.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

SAMPLE_INTERVAL_S = 0.5
_LINE_SEARCH_BYTES = 65536


def index_path(log: Path) -> Path:
    return log.with_suffix(".index")


class LogSampler:
    """The supervisor's side: record log sizes as they grow."""

    def __init__(self) -> None:
        self.sizes: dict[Path, int] = {}
        self.last_sample = float("-inf")

    def sample(self, logs: Iterable[Path], now: float, force: bool = False) -> None:
        if not force and now - self.last_sample < SAMPLE_INTERVAL_S:
            return
        self.last_sample = now
        for log in logs:
            try:
                size = log.stat().st_size
            except FileNotFoundError:
                continue
            if size == self.sizes.get(log, 0):
                continue
            try:
                with open(index_path(log), "a") as index:
                    index.write(f"{size} {now:.2f}\n")
            except OSError:
                continue  # disk full: only --since gets coarser; retried at the next sample
            self.sizes[log] = size


def offset_before(entries: Iterable[tuple[int, float]], cutoff: float) -> int:
    """Bytes of the log known to be written before ``cutoff`` (pure)."""
    offset = 0
    for size, written in entries:
        if written >= cutoff:
            break
        offset = size
    return offset


def read_index(log: Path) -> list[tuple[int, float]]:
    try:
        text = index_path(log).read_text()
    except FileNotFoundError:
        return []
    entries = []
    for line in text.splitlines():
        size, _, written = line.partition(" ")
        try:
            entries.append((int(size), float(written)))
        except ValueError:
            continue  # a line cut short by a full disk
    return entries


def offset_since(log: Path, cutoff: float) -> int:
    """Where ``logs --since`` starts reading: the start of the line written at ``cutoff``."""
    offset = offset_before(read_index(log), cutoff)
    if offset == 0:
        return 0
    start = max(0, offset - _LINE_SEARCH_BYTES)
    with open(log, "rb") as handle:
        handle.seek(start)
        before = handle.read(offset - start)
    newline = before.rfind(b"\n")
    return start + newline + 1 if newline >= 0 else start


def offset_of_last_lines(log: Path, lines: int, block: int = _LINE_SEARCH_BYTES) -> int:
    """Where ``logs --tail N`` starts reading: the start of the N-th line from the end.

    Read backwards a block at a time, so the cost is the tail's size, not the log's (a
    long run's log can be gigabytes). A final line without its newline counts as a line.
    """
    with open(log, "rb") as handle:
        end = handle.seek(0, os.SEEK_END)
        if end == 0 or lines < 1:
            return end
        handle.seek(end - 1)
        position = end - 1 if handle.read(1) == b"\n" else end  # that newline ends the last line
        found = 0
        while position > 0:
            start = max(0, position - block)
            handle.seek(start)
            data = handle.read(position - start)
            index = len(data)
            while (index := data.rfind(b"\n", 0, index)) >= 0:
                found += 1
                if found == lines:
                    return start + index + 1
            position = start
    return 0
