"""What an API failure means for the user, and when to try again (pure).

``translate`` turns a failed call into the typed error the CLI prints: the server's own
message first (it names the object, the user, the quota), then what to do. A 403 has four
different causes that need four different answers: RBAC (ask for a Role), an exceeded
ResourceQuota (wait for room, or a larger quota; a sweep keeps the cell queued), a
namespace being deleted (use another) and an admission policy (change the object). A 404
that names the namespace is about ``-n``, not about the job.

``retry_delay`` is the retry policy: 429/5xx and connection failures are retried within a
time budget, honouring the server's ``Retry-After``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from corejob.errors import (
    AdmissionDeniedError,
    ConflictError,
    CorejobError,
    ForbiddenError,
    JobNotFoundError,
    NamespaceNotFoundError,
    NamespaceTerminatingError,
    NotInstalledError,
    QuotaExceededError,
    RejectedError,
    UnavailableError,
)

RETRYABLE_STATUS = (0, 429, 500, 502, 503, 504)
OPERATOR_INSTALL = (
    "install the Kubeflow training operator v1.9: kubectl apply --server-side -k "
    '"github.com/kubeflow/training-operator.git/manifests/overlays/standalone?ref=v1.9.1"'
)
RBAC_DENIAL = re.compile(r'(User|ServiceAccount|Group) "[^"]*" cannot \w+ resource|cannot \w+ '
                         r"resource \"")  # fmt: skip


def status_body(error: Any) -> dict[str, Any]:
    """The server's Status object ({} when the body is not one)."""
    try:
        body = json.loads(getattr(error, "body", None) or "{}")
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def status_message(error: Any) -> str:
    """The ``message`` of the server's Status object (or the HTTP reason)."""
    body = status_body(error)
    message = body.get("message") or getattr(error, "reason", "") or ""
    causes = (body.get("details") or {}).get("causes") or []
    fields = "; ".join(f"{c.get('field', '')}: {c.get('message', '')}" for c in causes)
    return f"{message} ({fields})" if fields and fields not in message else str(message).strip()


def forbidden(
    message: str, verb: str, resource: str, namespace: str, target: str
) -> ForbiddenError | RejectedError:
    """Which of the four 403s this is, from the server's message (its wording is stable
    across releases: these strings come from the apiserver's admission plugins)."""
    if "exceeded quota" in message:
        return QuotaExceededError(
            f"{message}: the ResourceQuota of namespace {namespace!r} has no room now; wait "
            f"for jobs to finish or ask for more (kubectl describe resourcequota -n {namespace})"
        )
    if "because it is being terminated" in message:
        return NamespaceTerminatingError(
            f"{message}: namespace {namespace!r} is being deleted; submit to another "
            "namespace (-n) or recreate it once it is gone"
        )
    if RBAC_DENIAL.search(message) or not message:
        return ForbiddenError(
            f"{message or 'forbidden'}: you may not '{verb}' {target} in namespace "
            f"{namespace!r}; ask a cluster admin for a Role granting '{verb}' on '{resource}' "
            "(manifests/base/rbac-controller.yaml has the one corejob needs)"
        )
    return AdmissionDeniedError(
        f"{message}: an admission policy of the cluster refused {target} in namespace "
        f"{namespace!r}; change what it objects to (--set ...) or ask the cluster admin"
    )


def translate(
    error: Any, verb: str, resource: str, namespace: str, name: str | None, kind: str
) -> CorejobError:
    """Turn an ``ApiException`` into the error the user needs to see (one line, what to do)."""
    message = status_message(error)
    target = f"{resource}/{name}" if name else resource
    details = status_body(error).get("details") or {}
    if error.status == 401:
        return ForbiddenError(
            f"unauthorized: the cluster rejected your credentials ({message}); "
            "refresh them (log in again) and retry"
        )
    if error.status == 403:
        return forbidden(message, verb, resource, namespace, target)
    if error.status == 404 and details.get("kind") == "namespaces":
        return NamespaceNotFoundError(
            f"{message}: namespace {details.get('name', namespace)!r} does not exist; check "
            "-n/--namespace or the context's namespace (kubectl get namespaces)"
        )
    if error.status == 404 and not _names_object(message):
        return NotInstalledError(
            f"the cluster has no {kind} API ({resource}): the training operator's CRD is not "
            f"installed; {OPERATOR_INSTALL}"
        )
    if error.status == 404:
        return JobNotFoundError(f"{target} not found in namespace {namespace!r}")
    if error.status == 409:
        return ConflictError(f"conflict on {target} in namespace {namespace!r}: {message}")
    if error.status in (400, 422):
        return RejectedError(f"the API server rejected {target}: {message}")
    return UnavailableError(f"the API server failed to {verb} {target}: {error.status} {message}")


def _names_object(message: str) -> bool:
    return "not found" in message and "could not find the requested resource" not in message


def retry_after_s(error: Any) -> float | None:
    """The server's ``Retry-After`` in seconds (429 and 503 carry it), None when absent."""
    headers = getattr(error, "headers", None) or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None  # an HTTP date: rare from an apiserver; fall back to our backoff


def retry_delay(error: Any, backoff_s: float, elapsed_s: float, budget_s: float) -> float | None:
    """Seconds to wait before the next attempt, or None to give up: the server's
    Retry-After when it sent one, else ``backoff_s``; never past the budget."""
    wanted = retry_after_s(error)
    delay = wanted if wanted is not None else backoff_s
    return delay if elapsed_s + delay <= budget_s else None
