"""Failure kinds the CLI distinguishes, each with its own exit code (see ``corejob --help``).

Every error a user can cause or meet is one of these; ``str()`` is the one-line message
that the CLI prints (tracebacks only with ``--debug``). This module is the bottom layer of
the controller: every other module may raise these, and it imports nothing of corejob.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes of ``corejob`` (documented in the README and ``--help``)."""

    OK = 0
    ERROR = 1  # unexpected (a bug): rerun with --debug and report it
    USAGE = 2  # bad arguments, unknown model/dataset, invalid --set, render/validation failure
    NO_CLUSTER = 3  # no kube context / cluster config
    FORBIDDEN = 4  # 401/403: credentials, RBAC, exceeded quota, namespace being deleted
    NOT_INSTALLED = 5  # 404 on the PyTorchJob API: the training operator's CRD is missing
    CONFLICT = 6  # 409: a different object already has that name
    REJECTED = 7  # 400/422, or a 403 from admission: the API server rejected the object
    UNAVAILABLE = 8  # 5xx / timeouts / connection errors after retries
    NOT_FOUND = 9  # the named job (or the namespace) does not exist
    JOB_FAILED = 10  # --wait / sweep: a job ended Failed
    PENDING_TIMEOUT = 11  # a job stayed pending longer than --pending-timeout
    INTERRUPTED = 130  # Ctrl-C


class CorejobError(Exception):
    """Base of the typed failures; ``str()`` is one line, subclasses only pick the exit code."""

    exit_code: int = ExitCode.ERROR


class UsageError(CorejobError):
    exit_code = ExitCode.USAGE


class NoClusterError(CorejobError):
    exit_code = ExitCode.NO_CLUSTER


class ForbiddenError(CorejobError):
    """A 401, or a 403 from RBAC (the request itself was not allowed)."""

    exit_code = ExitCode.FORBIDDEN


class QuotaExceededError(ForbiddenError):
    """403 from the ResourceQuota admission: allowed, but no room now (a sweep waits)."""


class NamespaceTerminatingError(ForbiddenError):
    """403: the namespace is being deleted; nothing new may be created in it."""


class NotInstalledError(CorejobError):
    exit_code = ExitCode.NOT_INSTALLED


class ConflictError(CorejobError):
    exit_code = ExitCode.CONFLICT


class RejectedError(CorejobError):
    exit_code = ExitCode.REJECTED


class AdmissionDeniedError(RejectedError):
    """403 from an admission controller or webhook (a policy refused this object)."""


class UnavailableError(CorejobError):
    exit_code = ExitCode.UNAVAILABLE


class JobNotFoundError(CorejobError):
    exit_code = ExitCode.NOT_FOUND


class NamespaceNotFoundError(CorejobError):
    """404 for the namespace itself (not the job): ``-n`` or the context names a missing one."""

    exit_code = ExitCode.NOT_FOUND


class JobFailedError(CorejobError):
    exit_code = ExitCode.JOB_FAILED


class PendingTimeoutError(CorejobError):
    exit_code = ExitCode.PENDING_TIMEOUT
