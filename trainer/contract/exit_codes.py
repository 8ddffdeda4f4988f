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
DISTRIBUTED_FAILURE = 129
PREEMPTED = 143  # 128 + SIGTERM

RETRYABLE_MIN = 128


def is_retryable(code: int) -> bool:
    """True when the operator's ExitCode policy restarts a replica that exited with ``code``."""
    return code >= RETRYABLE_MIN
