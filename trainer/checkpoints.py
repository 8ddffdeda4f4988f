"""Checkpoint files: written atomically, checked before use, and which one a run resumes from.

A pod's ``/tmp`` and ``/runs`` are different filesystems, so Lightning's default save (a
temporary file elsewhere, then a move) degrades to copying straight into ``last.ckpt``: a
kill during a re-save leaves a truncated file where a valid one was, and the restart then
fails for good. :class:`AtomicCheckpointIO` writes every checkpoint to a temporary file in
the *same directory*, fsyncs it and renames it over the old one, so ``last.ckpt`` is
always a complete checkpoint, old or new. Temporary files a crash left behind are removed
when the next attempt starts (:func:`remove_stale_temporaries`).

On ``--resume auto`` the newest checkpoint that loads is used (``last.ckpt`` first, then
the others newest first); every file skipped is named with the reason. When checkpoints
exist but none loads, the run stops with a permanent error (exit 3) unless
``--damaged_checkpoints start_fresh`` says to start over.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from trainer.contract.errors import ConfigError, DataError, first_line

LAST_CKPT = "last.ckpt"
TEMPORARY_SUFFIX = ".partial"
DAMAGE_POLICIES = ("fail", "start_fresh")


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose saves are all-or-nothing on any POSIX filesystem."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        write_atomically(Path(path), lambda handle: torch.save(checkpoint, handle))


def write_atomically(path: Path, write: Any) -> None:
    """``write(handle)`` into a temporary file beside ``path``, fsync, rename into place.

    OSErrors come out naming ``path`` (the temporary name would mean nothing to a user).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, temporary = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX, dir=path.parent
        )
    except OSError as error:
        raise OSError(error.errno, error.strerror, str(path)) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes it private; other replicas must read it
        os.replace(temporary, path)
        _fsync_directory(path.parent)
    except OSError as error:
        _remove(temporary)
        raise OSError(error.errno, error.strerror, str(path)) from None
    except BaseException:
        _remove(temporary)
        raise


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (a crash right after must not bring the old name back)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # some filesystems cannot fsync a directory
            os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: str | Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def remove_stale_temporaries(checkpoint_dir: Path) -> list[Path]:
    """Delete temporary checkpoint files of earlier, crashed attempts; returns them.

    Called before training starts: no replica of this job can be saving yet, because a save
    needs every rank to have joined the process group first.
    """
    if not checkpoint_dir.is_dir():
        return []
    stale = sorted(checkpoint_dir.glob(f".*{TEMPORARY_SUFFIX}"))
    for path in stale:
        _remove(path)
    return stale


def checkpoint_problem(path: Path) -> str | None:
    """Why ``path`` cannot be resumed from (one phrase), or None when it loads.

    Memory-mapped: the archive's index and the pickled structure are read and checked, the
    tensor bytes are not (a complete save cannot be truncated in between: saves are atomic).
    """
    try:
        if path.stat().st_size == 0:
            return "empty file (0 bytes)"
        checkpoint = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    except OSError as error:
        if error.errno in (errno.ENOENT,):
            return "no such file"
        return f"unreadable ({error.strerror or error})"
    except Exception as error:  # torch raises RuntimeError/UnpicklingError/EOFError/...
        first = first_line(error)
        return f"damaged ({first[:160]})"
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        return "not a training checkpoint (no state_dict)"
    return None


def resume_candidates(checkpoint_dir: Path) -> list[Path]:
    """``last.ckpt`` first, then every other ``*.ckpt`` newest first."""
    if not checkpoint_dir.is_dir():
        return []
    others = [p for p in checkpoint_dir.glob("*.ckpt") if p.name != LAST_CKPT]
    others.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    last = checkpoint_dir / LAST_CKPT
    return ([last] if last.exists() else []) + others


def find_resume_checkpoint(
    checkpoint_dir: Path, damaged: str = "fail", report: Any = print
) -> Path | None:
    """The newest checkpoint under ``checkpoint_dir`` that loads, or None when there is none.

    ``report`` receives one line per skipped file. With checkpoints present but none
    loadable: ``damaged="fail"`` raises a permanent error, ``"start_fresh"`` returns None.
    """
    skipped: list[str] = []
    for path in resume_candidates(checkpoint_dir):
        problem = checkpoint_problem(path)
        if problem is None:
            return path
        skipped.append(f"{path.name}: {problem}")
        report(f"resume: skipping {path}: {problem}")
    if not skipped:
        return None
    if damaged == "start_fresh":
        report(f"resume: no checkpoint in {checkpoint_dir} loads; starting fresh as asked")
        return None
    raise DataError(
        checkpoint_dir,
        f"checkpoints exist but none loads ({'; '.join(skipped)}); pass "
        "--damaged_checkpoints start_fresh to train from scratch, or --resume PATH",
    )


def resolve_resume(
    resume: str, ckpt_path: str | None, checkpoint_dir: Path, damaged: str = "fail"
) -> Path | None:
    """The checkpoint to resume from: an explicit path (must load), else ``--resume auto``'s
    newest loadable checkpoint, else None (``--resume never``, or nothing saved yet)."""
    if ckpt_path and resume not in ("auto", ckpt_path):
        raise ConfigError("--ckpt_path", ckpt_path, f"conflicts with --resume {resume}")
    explicit = ckpt_path or (resume if resume not in ("auto", "never") else None)
    if explicit:
        if not Path(explicit).is_file():
            raise ConfigError("--resume", explicit, "no such checkpoint file")
        problem = checkpoint_problem(Path(explicit))
        if problem:
            raise DataError(explicit, f"cannot resume from it: {problem}")
        return Path(explicit)
    if resume == "never":
        return None
    return find_resume_checkpoint(checkpoint_dir, damaged)


def check_resume_compatible(checkpoint: Path, model_config: dict) -> None:
    """Refuse to resume a run whose checkpoint holds a different model (clear error, exit 2).

    Without this, a changed ``--model_config`` with the same run directory fails deep in
    ``load_state_dict`` with a shape mismatch that reads like a bug.
    """
    meta = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True).get(
        "corejob", {}
    )
    saved = meta.get("model_config")
    if saved is not None and saved != model_config:
        raise ConfigError(
            str(checkpoint),
            "model_config",
            f"the checkpoint holds model {saved.get('name')!r}, not "
            f"{model_config.get('name')!r}; pass --resume never or another --run_dir",
        )
