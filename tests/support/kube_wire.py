"""Kubernetes wire formats the emulator speaks: label/field selectors, Status errors,
the 410 Gone watch event, timestamps. Pure helpers, kept apart from the server itself."""

from __future__ import annotations

import datetime
from typing import Any

import kmock

STATUS_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "AlreadyExists",
    410: "Expired",
    405: "MethodNotAllowed",
    422: "Invalid",
    500: "InternalError",
    503: "ServiceUnavailable",
}


def status_error(status: int, message: str, details: dict[str, Any] | None = None) -> Exception:
    """A ``Status`` error as the real API server sends it (reason named as Kubernetes does)."""
    return kmock.KubernetesError(
        status=status,
        reason=STATUS_REASONS.get(status, "InternalError"),
        message=message,
        details=details or {"causes": []},
    )


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def gone_event(since: str) -> dict[str, Any]:
    message = f"too old resource version: {since}"
    return {
        "type": "ERROR",
        "object": {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "code": 410, "reason": "Expired", "message": message},
    }  # fmt: skip


def parse_selector(text: str) -> list[tuple[str, str, str | None]]:
    """``a=b,c!=d,e`` → [(key, op, value)]; enough of the label-selector grammar for us."""
    terms = []
    for term in filter(None, (t.strip() for t in text.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            terms.append((key, "!=", value))
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            terms.append((key, "=", value))
        else:
            terms.append((term.lstrip("!"), "!" if term.startswith("!") else "exists", None))
    return terms


def matches(labels: dict[str, str], selector: list[tuple[str, str, str | None]]) -> bool:
    for key, op, value in selector:
        if (op == "=" and labels.get(key) != value) or (op == "!=" and labels.get(key) == value):
            return False
        if (op == "exists" and key not in labels) or (op == "!" and key in labels):
            return False
    return True


def matches_fields(obj: dict[str, Any], selector: list[tuple[str, str, str | None]]) -> bool:
    for key, op, value in selector:
        current: Any = obj
        for part in key.split("."):
            current = current.get(part) if isinstance(current, dict) else None
        if (op == "=") != (current == value):
            return False
    return True
