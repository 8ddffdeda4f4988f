"""``wait_until``: the one way tests wait for something another process or thread does.

Tests synchronise on events they can observe (a log line, a file, a job's state), never
on a fixed sleep that is merely hoped to be long enough: fixed sleeps flake on a loaded
machine and waste time on an idle one. Keeping the polling loop in one place also means
every timeout fails the same way, with a message that names what was awaited and what
was last seen instead of a bare ``condition not reached``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_REPR_LIMIT = 200


def _short_repr(value: object) -> str:
    text = repr(value).replace("\n", "\\n")
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 3] + "..."


def wait_until(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Call ``predicate`` until it returns something truthy, and return that value.

    Raises ``AssertionError("timed out after <timeout> s waiting for <what> (last value:
    ...)")`` once ``timeout`` seconds have passed without a truthy value; ``what`` should
    read as the end of that sentence ("job ok to finish", "'early' in master-0.log").
    The predicate is always called at least once, and once more at the deadline, so a slow
    poll cannot time out without a last look. Exceptions from ``predicate`` propagate:
    raise one to fail at once when waiting can no longer succeed (the process died).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(
                f"timed out after {timeout:.1f} s waiting for {what} "
                f"(last value: {_short_repr(value)})"
            )
        time.sleep(min(interval, remaining))
