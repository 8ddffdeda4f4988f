"""``logs --tail N`` on the local backends: the last N lines, found by reading from the end."""

from __future__ import annotations

from pathlib import Path

import pytest

from corejob.backends.local.backend import LocalBackend
from corejob.backends.local.log_index import offset_of_last_lines
from corejob.cli import main
from corejob.job.state import JobState, summarize
from tests.support.local_jobs import (
    no_leftover_jobs,  # noqa: F401  (autouse)
    script_job,
)
from tests.support.wait import wait_until

TEN_LINES = """
import os, sys
for i in range(10):
    print("rank", os.environ["RANK"], "line", i, flush=True)
"""


@pytest.mark.parametrize("block", [1, 3, 7, 65536])
@pytest.mark.parametrize(
    ("text", "lines", "expected"),
    [
        (b"a\nbb\nccc\n", 2, b"bb\nccc\n"),
        (b"a\nbb\nccc", 2, b"bb\nccc"),  # a last line without its newline counts
        (b"a\nbb\nccc\n", 3, b"a\nbb\nccc\n"),
        (b"a\nbb\nccc\n", 50, b"a\nbb\nccc\n"),
        (b"a\n\n\nccc\n", 2, b"\nccc\n"),  # empty lines are lines
        (b"", 3, b""),
    ],
)
def test_offset_of_last_lines_is_where_the_last_n_lines_start(
    tmp_path: Path, block: int, text: bytes, lines: int, expected: bytes
) -> None:
    log = tmp_path / "master-0.log"
    log.write_bytes(text)
    assert text[offset_of_last_lines(log, lines, block=block) :] == expected


def test_offset_of_last_lines_past_a_line_longer_than_a_block(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    log.write_bytes(b"x" * 10_000_000 + b"\nlast one\nlast two\n")
    offset = offset_of_last_lines(log, 2)
    assert log.read_bytes()[offset:] == b"last one\nlast two\n"


def finished(backend: LocalBackend, name: str) -> None:
    def done() -> bool:
        job = backend.get(name)
        return job is not None and summarize(job).state is JobState.SUCCEEDED

    wait_until(done, 30, f"{name} to succeed")


def test_tail_keeps_the_last_lines_of_each_replica(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    backend.submit(script_job("tail", TEN_LINES))
    finished(backend, "tail")

    assert list(backend.logs("tail", tail=3)) == [f"rank 0 line {i}" for i in (7, 8, 9)]
    assert list(backend.logs("tail", replica="worker-0", tail=1)) == ["rank 1 line 9"]
    assert list(backend.logs("tail", all_replicas=True, tail=2)) == [
        "[master-0] rank 0 line 8",
        "[master-0] rank 0 line 9",
        "[worker-0] rank 1 line 8",
        "[worker-0] rank 1 line 9",
    ]
    assert len(list(backend.logs("tail", tail=1000))) == len(list(backend.logs("tail")))


def test_cli_logs_tail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    LocalBackend(tmp_path).submit(script_job("clitail", TEN_LINES))
    finished(LocalBackend(tmp_path), "clitail")
    local = ["--backend", "local", "--runs-dir", str(tmp_path)]

    assert main(["logs", "clitail", "--tail", "2", *local]) == 0
    assert capsys.readouterr().out.splitlines() == ["rank 0 line 8", "rank 0 line 9"]
    with pytest.raises(SystemExit) as usage:
        main(["logs", "clitail", "--tail", "0", *local])
    assert usage.value.code == 2
    assert "--tail: 0 must be >= 1" in capsys.readouterr().err
