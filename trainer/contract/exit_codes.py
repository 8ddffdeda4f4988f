"""Process exit codes: the trainer's side of the restart contract (docs/CONTRACT.md).

Under a PyTorchJob with ``restartPolicy: ExitCode`` the operator restarts replicas whose
container exits with 128 or more and fails the job for 1-127. Codes below 128 therefore
mean "retrying cannot help"; codes from 128 up mean "run me again, I will resume".

This module is the one statement of that rule: the controller's sweep retries and the
local backends' restart policy import :func:`is_retryable` from here. It imports nothing,
so the controller can use it without torch.
"""

from __future__ import annotations

SUCCESS = 0
UNEXPECTED_ERROR = 1
CONFIG_ERROR = 2
# A file or location that retrying with the same volume cannot fix: a damaged input that
# will never load as it is (recorded session, checkpoint), or a path the trainer may not
# use (read-only file system, permission denied). Separate from CONFIG_ERROR because the
# fix is different: repair or replace the data or the volume, not the command line.
DATA_ERROR = 3
DISTRIBUTED_FAILURE = 129
PREEMPTED = 143  # 128 + SIGTERM
# Storage that may recover by itself: no space left / quota exceeded, an I/O error or an
# unreachable (stale, disconnected) network volume. >= 128 so the operator restarts the
# gang, which resumes from last.ckpt once space is freed or the volume is back. 144 is the
# first code above the preemption code; as 128 + 16 it would be SIGSTKFLT, which nothing
# (kubelet, OOM killer, torchrun) sends, so it cannot be mistaken for a signal death
# (137 SIGKILL/OOM, 143 SIGTERM, 134 SIGABRT, 135 SIGBUS, 139 SIGSEGV).
STORAGE_UNAVAILABLE = 144

RETRYABLE_MIN = 128


def is_retryable(code: int) -> bool:
    """True when the operator's ExitCode policy restarts a replica that exited with ``code``."""
    return code >= RETRYABLE_MIN
