"""The Kubernetes calls corejob makes, with retries and errors a user can act on.

Every call names its verb and resource so that a 403 can say exactly which permission is
missing; 5xx, 429 and connection failures are retried with exponential backoff before
they become an :class:`~corejob.errors.UnavailableError`.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

import urllib3
from kubernetes import client

from corejob.backends.kubernetes.config import ClusterTarget
from corejob.errors import (
    ConflictError,
    CorejobError,
    ForbiddenError,
    JobNotFoundError,
    NotInstalledError,
    RejectedError,
    UnavailableError,
)
from corejob.job.flavors import FLAVORS, PYTORCHJOB, Flavor

GROUP, VERSION = PYTORCHJOB.group, PYTORCHJOB.version
PLURAL, KIND = PYTORCHJOB.plural, PYTORCHJOB.kind
REQUEST_TIMEOUT_S = 30
OPERATOR_INSTALL = f"install {PYTORCHJOB.operator}"
log = logging.getLogger(__name__)
T = TypeVar("T")


def status_message(error: client.ApiException) -> str:
    """The ``message`` of the server's Status object (or the HTTP reason)."""
    try:
        body = json.loads(error.body or "{}")
    except (TypeError, ValueError):
        return str(error.reason or "").strip()
    message = body.get("message") or error.reason or ""
    causes = (body.get("details") or {}).get("causes") or []
    fields = "; ".join(f"{c.get('field', '')}: {c.get('message', '')}" for c in causes)
    return f"{message} ({fields})" if fields and fields not in message else str(message)


def translate(
    error: client.ApiException, verb: str, resource: str, namespace: str, name: str | None
) -> CorejobError:
    """Turn an API failure into the error the user needs to see (one line, what to do)."""
    message = status_message(error)
    target = f"{resource}/{name}" if name else resource
    if error.status == 401:
        return ForbiddenError(
            f"unauthorized: the cluster rejected your credentials ({message}); "
            "refresh them (log in again) and retry"
        )
    if error.status == 403:
        return ForbiddenError(
            f"forbidden: you may not '{verb}' {target} in namespace {namespace!r} ({message}); "
            f"ask a cluster admin for a Role granting '{verb}' on '{resource}'"
        )
    flavor = next((f for f in FLAVORS.values() if f.resource == resource), None)
    if error.status == 404 and flavor is not None and not _names_object(message):
        return NotInstalledError(not_installed_message([flavor]))
    if error.status == 404:
        return JobNotFoundError(f"{target} not found in namespace {namespace!r}")
    if error.status == 409:
        return ConflictError(f"conflict on {target} in namespace {namespace!r}: {message}")
    if error.status in (400, 422):
        return RejectedError(f"the API server rejected {target}: {message}")
    return UnavailableError(f"the API server failed to {verb} {target}: {error.status} {message}")


def not_installed_message(flavors: list[Flavor]) -> str:
    """The cluster serves none of ``flavors``: name each API and how to install it."""
    if len(flavors) == 1 and flavors[0] is PYTORCHJOB:
        return (
            f"the cluster has no {KIND} API ({GROUP}/{VERSION}): the training operator's CRD "
            f"is not installed; {OPERATOR_INSTALL}"
        )
    apis = " nor ".join(f"{f.kind} ({f.api_version})" for f in flavors)
    installs = "; or ".join(f"install {f.operator}" for f in flavors)
    return f"the cluster serves neither {apis}: no Kubeflow job CRD is installed; {installs}"


def _names_object(message: str) -> bool:
    return "not found" in message and "could not find the requested resource" not in message


def retryable(error: Exception) -> bool:
    if isinstance(error, client.ApiException):
        return error.status in (429, 500, 502, 503, 504) or error.status == 0
    return isinstance(error, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError)


class KubeApi:
    """Thin typed wrapper over ``CustomObjectsApi`` and ``CoreV1Api`` for one namespace."""

    def __init__(self, target: ClusterTarget, flavor: Flavor = PYTORCHJOB) -> None:
        self.target = target
        self.flavor = flavor  # which job API the job calls below address
        self.namespace = target.namespace
        self.api_client = client.ApiClient(target.configuration)
        self.custom = client.CustomObjectsApi(self.api_client)
        self.core = client.CoreV1Api(self.api_client)
        # Overridable for impatient environments (tests, CI); the defaults wait ~3.5 s in all.
        self.attempts = int(os.environ.get("COREJOB_API_ATTEMPTS", "4"))
        self.backoff_s = float(os.environ.get("COREJOB_API_BACKOFF_S", "0.5"))

    def call(self, verb: str, resource: str, name: str | None, function: Callable[[], T]) -> T:
        """Run one API call; retry transient failures with backoff; translate the rest."""
        delay = self.backoff_s
        for attempt in range(1, self.attempts + 1):
            try:
                return function()
            except Exception as error:
                if not isinstance(error, client.ApiException) and not retryable(error):
                    raise  # a bug, not the cluster: let it surface as such
                if not retryable(error) or attempt == self.attempts:
                    raise self._final_error(error, verb, resource, name, attempt) from error
                log.info("retrying %s %s after %s (attempt %d)", verb, resource, error, attempt)
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def _final_error(
        self, error: Exception, verb: str, resource: str, name: str | None, attempts: int
    ) -> CorejobError:
        if isinstance(error, client.ApiException):
            translated = translate(error, verb, resource, self.namespace, name)
            if isinstance(translated, UnavailableError) and attempts > 1:
                return UnavailableError(f"{translated} (gave up after {attempts} attempts)")
            return translated
        return UnavailableError(
            f"cannot reach the Kubernetes API at {self.target.server} to {verb} {resource} "
            f"({type(error).__name__}; gave up after {attempts} attempts): check the network "
            "or VPN and `kubectl cluster-info`"
        )

    # --- PyTorchJobs ----------------------------------------------------------------------

    def for_flavor(self, flavor: Flavor) -> KubeApi:
        """The same connection addressing another job API (TrainJobs instead of PyTorchJobs)."""
        if flavor is self.flavor:
            return self
        other = copy.copy(self)
        other.flavor = flavor
        return other

    def _jobs(self, method: str, *args: Any, **kwargs: Any) -> Any:
        function = getattr(self.custom, method)
        flavor = self.flavor
        return function(flavor.group, flavor.version, self.namespace, flavor.plural, *args,
                        **kwargs)  # fmt: skip

    def create_job(self, job: dict[str, Any]) -> dict[str, Any]:
        name = job["metadata"]["name"]
        return self.call(
            "create",
            self.flavor.resource,
            name,
            lambda: self._jobs(
                "create_namespaced_custom_object", job, _request_timeout=REQUEST_TIMEOUT_S
            ),
        )

    def get_job(self, name: str) -> dict[str, Any] | None:
        try:
            return self.call(
                "get",
                self.flavor.resource,
                name,
                lambda: self._jobs(
                    "get_namespaced_custom_object", name, _request_timeout=REQUEST_TIMEOUT_S
                ),
            )
        except JobNotFoundError:
            return None

    def list_jobs(self, selector: str = "") -> dict[str, Any]:
        """The raw list (``items`` + ``metadata.resourceVersion`` for watching from it)."""
        return self.call(
            "list",
            self.flavor.resource,
            None,
            lambda: self._jobs(
                "list_namespaced_custom_object",
                label_selector=selector,
                _request_timeout=REQUEST_TIMEOUT_S,
            ),
        )

    def delete_job(self, name: str) -> bool:
        try:
            self.call(
                "delete",
                self.flavor.resource,
                name,
                lambda: self._jobs(
                    "delete_namespaced_custom_object",
                    name,
                    propagation_policy="Foreground",
                    _request_timeout=REQUEST_TIMEOUT_S,
                ),
            )
        except JobNotFoundError:
            return False
        return True

    def open_job_watch(self, selector: str, resource_version: str, timeout_s: int) -> Any:
        """An open watch response (urllib3) streaming JSON lines; the caller closes it."""
        return self._jobs(
            "list_namespaced_custom_object",
            label_selector=selector,
            resource_version=resource_version,
            timeout_seconds=timeout_s,
            allow_watch_bookmarks=True,
            watch=True,
            _preload_content=False,
            _request_timeout=(10, timeout_s + 15),
        )

    # --- pods, events, nodes --------------------------------------------------------------

    def _raw(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Call without model deserialization: real pods/events carry fields the client's
        models would reject or drop, and plain dicts are what the pure code reads."""
        response = function(*args, _preload_content=False, _request_timeout=REQUEST_TIMEOUT_S,
                            **kwargs)  # fmt: skip
        return json.loads(response.data or b"{}")

    def list_pods(self, selector: str) -> list[dict[str, Any]]:
        listing = self.call(
            "list", "pods", None,
            lambda: self._raw(self.core.list_namespaced_pod, self.namespace,
                              label_selector=selector),
        )  # fmt: skip
        return listing.get("items", [])

    def list_events(self, object_name: str) -> list[dict[str, Any]]:
        listing = self.call(
            "list", "events", None,
            lambda: self._raw(self.core.list_namespaced_event, self.namespace,
                              field_selector=f"involvedObject.name={object_name}"),
        )  # fmt: skip
        return listing.get("items", [])

    def list_nodes(self) -> list[dict[str, Any]]:
        listing = self.call("list", "nodes", None, lambda: self._raw(self.core.list_node))
        return listing.get("items", [])

    def pod_log(
        self,
        pod: str,
        follow: bool = False,
        since_seconds: int | None = None,
        timestamps: bool = False,
        tail_lines: int | None = None,
    ) -> Any:
        """The pod's trainer container log: text, or a urllib3 stream when following."""
        options: dict[str, Any] = {"container": self.flavor.container, "follow": follow}
        if timestamps:
            options["timestamps"] = True
        if tail_lines:
            options["tail_lines"] = tail_lines
        if since_seconds:
            options["since_seconds"] = since_seconds
        if follow:
            options.update(_preload_content=False, _request_timeout=(10, None))
        else:
            options["_request_timeout"] = REQUEST_TIMEOUT_S
        return self.call(
            "get",
            "pods/log",
            pod,
            lambda: self.core.read_namespaced_pod_log(pod, self.namespace, **options),
        )
