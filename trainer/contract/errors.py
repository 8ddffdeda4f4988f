"""Errors the trainer reports to users as one line (file, field, value, what to do)."""

from __future__ import annotations

import errno
import os

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


def _path_line(path: str | os.PathLike[str] | None, problem: str) -> str:
    """``PATH: problem`` on one line (an OS message or a numpy header may hold newlines)."""
    text = " ".join(str(problem).split())
    return f"{os.fsdecode(path)}: {text}" if path is not None else text


class _PathError(CorejobTrainError):
    """An error about one file or folder: ``str()`` starts with the path."""

    def __init__(self, path: str | os.PathLike[str] | None, problem: str) -> None:
        self.path = os.fsdecode(path) if path is not None else None
        self.problem = problem
        super().__init__(_path_line(path, problem))

    def __reduce__(self) -> tuple:
        # Default pickling calls cls(message): wrong arity. Errors cross process
        # boundaries (multiprocessing, DataLoader workers), so keep them picklable.
        return (type(self), (self.path, self.problem))


class DataError(_PathError):
    """A file or location that retrying with the same volume cannot fix (permanent, exit 3).

    A damaged input that will never load as it is (a recorded session, a checkpoint), or a
    path the trainer may not use (read-only file system, permission denied). Damaged
    *synthetic* sessions never get here: they are regenerated (``trainer.synthetic``).
    """

    exit_code = exit_codes.DATA_ERROR


class StorageError(_PathError):
    """Storage that may recover: full, over quota, I/O error, unreachable (exit 144).

    Retryable: the operator restarts the gang, which resumes from ``last.ckpt`` once
    space is freed or the network volume is back.
    """

    exit_code = exit_codes.STORAGE_UNAVAILABLE


_RETRY_HINT = "; retryable (exit 144: the operator restarts the job, which resumes)"
# errno -> "what it means; what to do". Conditions that can clear without a code change.
RETRYABLE_ERRNOS: dict[int, str] = {
    errno.ENOSPC: "no space left on device (ENOSPC); free space on this volume",
    errno.EDQUOT: "disk quota exceeded (EDQUOT); free space or raise the quota",
    errno.EIO: "input/output error (EIO): the volume may be failing or unreachable",
    errno.ESTALE: "stale file handle (ESTALE): the network volume was remounted or lost",
    errno.ENOTCONN: "volume not connected (ENOTCONN): a network or FUSE mount dropped",
}
# Conditions that stay until someone changes the volume or the job's paths.
PERMANENT_ERRNOS: dict[int, str] = {
    errno.EROFS: "read-only file system (EROFS); mount the volume read-write or choose a"
    " writable directory",
    errno.EACCES: "permission denied (EACCES) for uid {uid}; grant it access (the chart runs"
    " as uid/gid 1000, fsGroup 1000) or choose another directory",
    errno.EPERM: "operation not permitted (EPERM) for uid {uid}; grant it access (the chart"
    " runs as uid/gid 1000, fsGroup 1000) or choose another directory",
}


def storage_error(
    error: OSError, path: str | os.PathLike[str] | None = None
) -> DataError | StorageError | None:
    """The one-line error for a storage ``OSError``, or None when its errno is no such case.

    ``path`` names the file when the error lacks one (a failed ``write`` on an open file
    carries no ``filename``). Writers that know their path should convert with this, so
    the message names it; the CLI converts whatever reaches it unconverted.
    """
    named = isinstance(error.filename, str | bytes | os.PathLike)
    where = error.filename if named else path  # None: the message cannot name a path
    if error.errno in RETRYABLE_ERRNOS:
        return StorageError(where, RETRYABLE_ERRNOS[error.errno] + _RETRY_HINT)
    if error.errno in PERMANENT_ERRNOS:
        uid = os.getuid() if hasattr(os, "getuid") else "?"
        return DataError(where, PERMANENT_ERRNOS[error.errno].format(uid=uid))
    return None


def first_line(error: BaseException) -> str:
    """An exception's first non-blank line (its type's name when it has no message): the
    part of torch's and numpy's multi-paragraph messages a one-line error can carry."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return (lines or [type(error).__name__])[0]
