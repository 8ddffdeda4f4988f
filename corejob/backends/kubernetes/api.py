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

from corejob.backends.kubernetes.api_errors import (
    RETRYABLE_STATUS,
    retry_delay,
    status_message,
    translate,
)
from corejob.backends.kubernetes.config import ClusterTarget
from corejob.errors import CorejobError, JobNotFoundError, NotInstalledError, UnavailableError
from corejob.job.flavors import FLAVORS, PYTORCHJOB, Flavor

GROUP, VERSION = PYTORCHJOB.group, PYTORCHJOB.version
PLURAL, KIND = PYTORCHJOB.plural, PYTORCHJOB.kind
REQUEST_TIMEOUT_S = 30
# A write must outlast a busy or restarting API server (429/5xx for tens of seconds);
# reads are asked again by their caller's loop, so they give up sooner.
WRITE_BUDGET_S = 90.0
WRITES = ("create", "delete", "patch")
KUEUE_GROUP, KUEUE_VERSIONS = "kueue.x-k8s.io", ("v1beta2", "v1beta1")
KUEUE_JOB_UID_LABEL = "kueue.x-k8s.io/job-uid"
log = logging.getLogger(__name__)
T = TypeVar("T")
__all__ = ["KubeApi", "retryable", "status_message"]


def not_installed_message(flavors: list[Flavor]) -> str:
    """The cluster serves none of ``flavors``: name each API and how to install it."""
    if len(flavors) == 1:
        flavor = flavors[0]
        who = "the training operator's" if flavor is PYTORCHJOB else "Kubeflow Trainer's"
        return (
            f"the cluster has no {flavor.kind} API ({flavor.resource}): {who} CRD is not "
            f"installed; install {flavor.operator}"
        )
    apis = " nor ".join(f"{f.kind} ({f.api_version})" for f in flavors)
    installs = "; or ".join(f"install {f.operator}" for f in flavors)
    return f"the cluster serves neither {apis}: no Kubeflow job CRD is installed; {installs}"


def retryable(error: Exception) -> bool:
    if isinstance(error, client.ApiException):
        return error.status in RETRYABLE_STATUS
    return isinstance(error, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError)


class KubeApi:
    """Thin typed wrapper over ``CustomObjectsApi`` and ``CoreV1Api`` for one namespace."""

    # Class attributes so tests can replace time (a minute of retries in no time).
    clock: Callable[[], float] = staticmethod(time.monotonic)
    sleep: Callable[[float], None] = staticmethod(time.sleep)

    def __init__(self, target: ClusterTarget, flavor: Flavor = PYTORCHJOB) -> None:
        self.target = target
        self.flavor = flavor  # which job API the job calls below address
        self.namespace = target.namespace
        self.api_client = client.ApiClient(target.configuration)
        self.custom = client.CustomObjectsApi(self.api_client)
        self.core = client.CoreV1Api(self.api_client)
        # Overridable for impatient environments (tests, CI); reads wait ~3.5 s in all.
        self.attempts = int(os.environ.get("COREJOB_API_ATTEMPTS", "4"))
        self.backoff_s = float(os.environ.get("COREJOB_API_BACKOFF_S", "0.5"))
        self.write_budget_s = float(os.environ.get("COREJOB_API_WRITE_BUDGET_S", WRITE_BUDGET_S))

    def call(self, verb: str, resource: str, name: str | None, function: Callable[[], T]) -> T:
        """Run one API call; retry transient failures (429, 5xx, connection) with backoff,
        or after the server's Retry-After; translate the rest. Writes retry for
        ``write_budget_s``, reads ``attempts`` times."""
        write = verb in WRITES
        budget = self.write_budget_s if write else float("inf")
        started, delay, attempt = self.clock(), self.backoff_s, 0
        while True:
            attempt += 1
            try:
                return function()
            except Exception as error:
                if not isinstance(error, client.ApiException) and not retryable(error):
                    raise  # a bug, not the cluster: let it surface as such
                elapsed = self.clock() - started
                wait = retry_delay(error, delay, elapsed, budget) if retryable(error) else None
                if wait is None or (not write and attempt >= self.attempts):
                    final = self._final_error(error, verb, resource, name, attempt, elapsed)
                    raise final from error
                log.info("retrying %s %s in %.1fs after %s (attempt %d)", verb, resource, wait,
                         error, attempt)  # fmt: skip
                self.sleep(wait)
                delay = min(delay * 2, 16.0)

    def _final_error(
        self, error: Exception, verb: str, resource: str, name: str | None, attempts: int,
        elapsed: float,
    ) -> CorejobError:  # fmt: skip
        tried = f"gave up after {attempts} attempts in {elapsed:.0f}s"
        if isinstance(error, client.ApiException):
            translated = translate(error, verb, resource, self.namespace, name, KIND)
            flavor = next((f for f in FLAVORS.values() if f.resource == resource), None)
            if isinstance(translated, NotInstalledError) and flavor is not None:
                return NotInstalledError(not_installed_message([flavor]))
            if isinstance(translated, UnavailableError) and attempts > 1:
                return UnavailableError(f"{translated} ({tried})")
            return translated
        return UnavailableError(
            f"cannot reach the Kubernetes API at {self.target.server} to {verb} {resource} "
            f"({type(error).__name__}; {tried}): check the network "
            "or VPN and `kubectl cluster-info`"
        )

    # --- PyTorchJobs or TrainJobs (self.flavor) -------------------------------------------

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

    # --- ConfigMaps (the config files a job owns; the results ledger) ----------------

    def create_config_map(self, config_map: dict[str, Any]) -> dict[str, Any]:
        name = config_map["metadata"]["name"]
        return self.call(
            "create", "configmaps", name,
            lambda: self._raw(self.core.create_namespaced_config_map, self.namespace,
                              config_map),
        )  # fmt: skip

    def list_config_maps(self, selector: str) -> list[dict[str, Any]]:
        listing = self.call(
            "list", "configmaps", None,
            lambda: self._raw(self.core.list_namespaced_config_map, self.namespace,
                              label_selector=selector),
        )  # fmt: skip
        return listing.get("items", [])

    # --- Kueue ---------------------------------------------------------------------------

    def list_workloads(self, job_uid: str) -> list[dict[str, Any]]:
        """Kueue's Workloads for a job (Kueue labels them with the job's uid): v1beta2,
        else v1beta1 (older Kueue). NotInstalledError when neither is served."""
        selector = f"{KUEUE_JOB_UID_LABEL}={job_uid}"
        for version in KUEUE_VERSIONS:
            try:
                listing = self.call(
                    "list", f"workloads.{KUEUE_GROUP}", None,
                    lambda version=version: self.custom.list_namespaced_custom_object(
                        KUEUE_GROUP, version, self.namespace, "workloads",
                        label_selector=selector, _request_timeout=REQUEST_TIMEOUT_S),
                )  # fmt: skip
            except NotInstalledError:
                continue
            return list(listing.get("items", []))
        raise NotInstalledError(f"the cluster serves no workloads.{KUEUE_GROUP} API")

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

    def create_pod(self, pod: dict[str, Any]) -> dict[str, Any]:
        name = pod["metadata"]["name"]
        return self.call(
            "create", "pods", name,
            lambda: self._raw(self.core.create_namespaced_pod, self.namespace, pod),
        )  # fmt: skip

    def get_pod(self, name: str) -> dict[str, Any] | None:
        try:
            return self.call(
                "get", "pods", name,
                lambda: self._raw(self.core.read_namespaced_pod, name, self.namespace),
            )  # fmt: skip
        except JobNotFoundError:
            return None

    def delete_pod(self, name: str, grace_period_s: int | None = None) -> bool:
        """Delete a pod; False when it was already gone."""
        try:
            self.call(
                "delete", "pods", name,
                lambda: self._raw(self.core.delete_namespaced_pod, name, self.namespace,
                                  grace_period_seconds=grace_period_s),
            )  # fmt: skip
        except JobNotFoundError:
            return False
        return True

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
        container: str | None = None,
    ) -> Any:
        """The log of the pod's ``container`` (default: the trainer's): text, or a urllib3
        stream when following."""
        options: dict[str, Any] = {"container": container or self.flavor.container,
                                   "follow": follow}  # fmt: skip
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
