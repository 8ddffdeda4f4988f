"""Checkpoint files: atomic writes, damage detection, and the resume fallback order."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import torch

from trainer.checkpoints import (
    TEMPORARY_SUFFIX,
    AtomicCheckpointIO,
    checkpoint_problem,
    find_resume_checkpoint,
    remove_stale_temporaries,
    resolve_resume,
    write_atomically,
)
from trainer.contract.errors import ConfigError, DataError


def save(path: Path, step: int) -> Path:
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.full((4,), step)}}, path)
    return path


def step_of(path: Path) -> int:
    return int(torch.load(path, weights_only=False)["state_dict"]["w"][0])


def test_a_failed_write_keeps_the_previous_checkpoint_and_leaves_no_temporary(tmp_path):
    last = save(tmp_path / "last.ckpt", 1)

    def full_disk(handle) -> None:
        handle.write(b"half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as error:
        write_atomically(last, full_disk)
    assert error.value.errno == errno.ENOSPC and error.value.filename == str(last)
    assert step_of(last) == 1
    assert os.listdir(tmp_path) == ["last.ckpt"]


def test_a_save_replaces_the_file_whole_and_is_readable_by_other_users(tmp_path):
    last = save(tmp_path / "last.ckpt", 1)
    save(last, 2)
    assert step_of(last) == 2 and (last.stat().st_mode & 0o777) == 0o644


def test_stale_temporaries_of_a_crashed_attempt_are_removed(tmp_path):
    save(tmp_path / "last.ckpt", 1)
    stale = tmp_path / f".last.ckpt.abc123{TEMPORARY_SUFFIX}"
    stale.write_bytes(b"partial")
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert sorted(os.listdir(tmp_path)) == ["last.ckpt"]


def test_damage_is_described_in_one_phrase(tmp_path):
    good = save(tmp_path / "good.ckpt", 1)
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"weights": torch.ones(2)}, foreign)
    assert checkpoint_problem(good) is None
    assert checkpoint_problem(empty) == "empty file (0 bytes)"
    assert checkpoint_problem(truncated).startswith("damaged (")
    assert checkpoint_problem(foreign) == "not a training checkpoint (no state_dict)"


def test_resume_auto_falls_back_to_the_newest_checkpoint_that_loads(tmp_path):
    older = save(tmp_path / "epoch001-bps0.1000.ckpt", 1)
    newer = save(tmp_path / "epoch002-bps0.2000.ckpt", 2)
    os.utime(older, (1, 1))
    (tmp_path / "last.ckpt").write_bytes(b"")  # killed during a non-atomic save
    lines: list[str] = []
    assert find_resume_checkpoint(tmp_path, report=lines.append) == newer
    assert lines == [f"resume: skipping {tmp_path / 'last.ckpt'}: empty file (0 bytes)"]


def test_resume_auto_with_nothing_loadable_stops_unless_told_to_start_fresh(tmp_path):
    assert find_resume_checkpoint(tmp_path) is None  # nothing saved yet: a fresh start
    (tmp_path / "last.ckpt").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"checkpoints exist but none loads \(last.ckpt: damaged"):
        resolve_resume("auto", None, tmp_path)
    assert resolve_resume("auto", None, tmp_path, damaged="start_fresh") is None
    assert resolve_resume("never", None, tmp_path) is None


def test_an_explicit_checkpoint_must_load(tmp_path):
    good = save(tmp_path / "epoch3.ckpt", 3)
    assert resolve_resume(str(good), None, tmp_path) == good
    assert resolve_resume("auto", str(good), tmp_path) == good
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"x")
    with pytest.raises(DataError, match=rf"{bad}: cannot resume from it: damaged"):
        resolve_resume(str(bad), None, tmp_path)
    with pytest.raises(ConfigError, match="no such checkpoint"):
        resolve_resume(str(tmp_path / "missing.ckpt"), None, tmp_path)
    with pytest.raises(ConfigError, match="conflicts"):
        resolve_resume("never", str(good), tmp_path)
