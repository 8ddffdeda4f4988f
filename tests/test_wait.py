"""``tests.support.wait.wait_until``: returns the awaited value, or fails naming what it awaited."""

from __future__ import annotations

import re
import time

import pytest

from tests.support.wait import wait_until


def test_returns_the_first_truthy_value():
    calls = []

    def third_time_lucky() -> list[int]:
        calls.append(1)
        return ["found"] if len(calls) >= 3 else []

    assert wait_until(third_time_lucky, timeout=5, what="the third call", interval=0.001) == [
        "found"
    ]
    assert len(calls) == 3


def test_timeout_names_what_was_awaited_and_the_last_value():
    started = time.monotonic()
    with pytest.raises(AssertionError) as failure:
        wait_until(lambda: [], timeout=0.2, what="job ok to finish")
    assert time.monotonic() - started >= 0.2
    message = str(failure.value)
    assert message == "timed out after 0.2 s waiting for job ok to finish (last value: [])"


def test_a_long_last_value_is_cut_to_one_short_line():
    class Falsy:
        def __bool__(self) -> bool:
            return False

        def __repr__(self) -> str:
            return "line\n" + "x" * 1000

    with pytest.raises(AssertionError) as failure:
        wait_until(Falsy, timeout=0.1, what="a truthy value")
    message = str(failure.value)
    assert "\n" not in message and len(message) < 300
    assert re.search(r"\(last value: line\\nx+\.\.\.\)$", message)


def test_exceptions_from_the_predicate_propagate():
    def dead() -> bool:
        raise RuntimeError("the process exited 1")

    with pytest.raises(RuntimeError, match="exited 1"):
        wait_until(dead, timeout=5, what="never")
