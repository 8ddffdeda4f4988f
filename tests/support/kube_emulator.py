"""A Kubernetes API server good enough for the controller: kmock's emulator, patched.

kmock 0.8's ``KubernetesEmulator`` stores objects and streams watch events, but it is not
an API server yet: creation answers 200 without uid/resourceVersion, label selectors are
ignored, lists have no kind, watches cannot resume, and errors carry kmock's own reasons.
This subclass fills exactly those gaps (plus pod logs and fault injection), so the real
``kubernetes`` client, the kubeflow-training SDK and ``kubectl`` can talk to it over HTTP.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp.web
import attrs
import kmock
from kmock._internal import aiobus, rendering

from tests.support.kube_wire import (
    gone_event,
    matches,
    matches_fields,
    now_rfc3339,
    parse_selector,
    status_error,
)

# (resource, kind, namespaced) served by the emulator; discovery is derived from this table.
RESOURCES: list[tuple[str, str, bool]] = [
    ("kubeflow.org/v1/pytorchjobs", "PyTorchJob", True),
    ("trainer.kubeflow.org/v1alpha1/trainjobs", "TrainJob", True),
    ("trainer.kubeflow.org/v1alpha1/trainingruntimes", "TrainingRuntime", True),
    ("trainer.kubeflow.org/v1alpha1/clustertrainingruntimes", "ClusterTrainingRuntime", False),
    ("v1/pods", "Pod", True),
    ("v1/events", "Event", True),
    ("v1/configmaps", "ConfigMap", True),
    ("v1/nodes", "Node", False),
    ("v1/namespaces", "Namespace", False),
]
VERBS = {"create", "delete", "get", "list", "patch", "update", "watch"}


@dataclass
class Fault:
    """An injected failure: the next ``times`` requests matching method+path get ``status``."""

    method: str
    path: re.Pattern[str]
    status: int
    message: str
    times: int
    headers: dict[str, str] = field(default_factory=dict)


class RecordingBus(aiobus.Bus[Any]):
    """The per-resource event bus, which also stamps resourceVersions and keeps a history.

    Stamping at publication time (under the emulator's lock) makes resourceVersions
    monotonic in event order, which is what watch resumption relies on.
    """

    def __init__(self, emulator: ApiServerEmulator) -> None:
        super().__init__()
        self.emulator = emulator

    async def put(self, event: Any) -> None:
        obj = event.get("object", {})
        rv = self.emulator.next_resource_version()
        obj.setdefault("metadata", {})["resourceVersion"] = str(rv)
        event = copy.deepcopy(event)
        self.emulator.history.append((rv, event))
        await super().put(event)


@attrs.define(kw_only=True)
class ApiServerEmulator(kmock.KubernetesEmulator):
    """kmock's emulator with API-server semantics (see the module docstring)."""

    resource_version: int = 0
    history: list[tuple[int, dict[str, Any]]] = attrs.field(factory=list)
    compacted_before: int = 0
    faults: list[Fault] = attrs.field(factory=list)
    # (namespace, pod) -> [(RFC3339Nano timestamp, line)], appended via append_log()
    pod_logs: dict[tuple[str, str], list[tuple[str, str]]] = attrs.field(factory=dict)
    watch_generation: int = 0
    dropped: asyncio.Event = attrs.field(factory=asyncio.Event)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._buses = _BusFactory(self)
        for path, kind, namespaced in RESOURCES:
            self.resources[path] = kmock.ResourceInfo(
                kind=kind,
                singular=kind.lower(),
                namespaced=namespaced,
                verbs=VERBS,
                subresources={"status"} if kind in ("PyTorchJob", "TrainJob") else set(),
            )

    def compact(self) -> None:
        """Forget the event history, as etcd compaction does: old watches get 410 Gone."""
        self.history.clear()
        self.compacted_before = self.resource_version + 1

    def drop_watches(self) -> None:
        """End every open watch stream now (a dropped connection, as clients see it)."""
        self.watch_generation += 1
        self.dropped.set()
        self.dropped = asyncio.Event()

    def inject_fault(
        self, method: str, path: str, status: int, message: str, times: int = 1,
        headers: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        """Fail the next ``times`` requests whose path+query matches the regex ``path``
        (with ``headers`` on the answer, e.g. ``Retry-After``)."""
        fault = Fault(method.upper(), re.compile(path), status, message, times, headers or {})
        self.faults.append(fault)

    @property
    def requests(self) -> list[rendering.Request]:
        """Every request served so far, oldest first."""
        return list(self)

    def append_log(self, namespace: str, pod: str, lines: list[str], age_s: float = 0) -> None:
        """Lines the pod's container printed ``age_s`` seconds ago (each its own timestamp)."""
        for line in lines:
            when = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=age_s)
            stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            self.pod_logs.setdefault((namespace, pod), []).append((stamp, line))

    def next_resource_version(self) -> int:
        self.resource_version += 1
        return self.resource_version

    # --- the request pipeline -------------------------------------------------------------

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        fault = self._injected_fault(request)
        if fault is not None and fault.headers:
            status = {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                      "code": fault.status, "message": fault.message}  # fmt: skip
            return aiohttp.web.json_response(status, status=fault.status, headers=fault.headers)
        if fault is not None:
            raise status_error(fault.status, fault.message)
        if request.resource is None or not request.resource.plural:
            return await super()._handle(request)  # discovery etc.: kmock's scaffold
        if not any(known == request.resource for known in self.resources):
            raise status_error(404, "the server could not find the requested resource")
        if request.method.value == "GET" and request.params.get("watch") in ("true", "True", "1"):
            return await (await self._serve_watch(request))(request)  # Go's ParseBool
        if request.subresource == "log":
            return await self._serve_log(request)
        # Objects are served directly, not through kmock's DSL: matching a request against
        # the reactions walks the whole request history, which makes long runs quadratic.
        serve = {
            kmock.action.LIST: self._serve_list,
            kmock.action.FETCH: self._serve_fetch,
            kmock.action.CREATE: self._create,
            kmock.action.UPDATE: self._update,
            kmock.action.DELETE: self._delete,
        }.get(request.action)
        if serve is None:
            raise status_error(405, f"{request.method.value} is not supported here")
        return await rendering.Response(payload=await serve(request))(request)

    async def _create(self, request: rendering.Request) -> rendering.Response:
        self._admit_new_object(request)
        key = (request.resource, request.namespace, request.data["metadata"]["name"])
        async with self._lock:
            if key in self.objects:
                self.objects[key].create(request.data)
            else:
                self.objects[key] = request.data
            raw = self.objects[key].raw
            await self._buses[request.resource].put({"type": "ADDED", "object": raw})
        return rendering.Response(status=201, payload=copy.deepcopy(self.objects[key].raw))

    async def _update(self, request: rendering.Request) -> rendering.Payload:
        key = self._require_object(request)
        async with self._lock:
            self.objects[key].patch(request.data or {})
            raw = self.objects[key].raw
            await self._buses[request.resource].put({"type": "MODIFIED", "object": raw})
        return copy.deepcopy(self.objects[key].raw)

    async def _delete(self, request: rendering.Request) -> rendering.Payload:
        key = self._require_object(request)
        async with self._lock:
            raw = self.objects[key].raw
            self.objects[key].delete()
            await self._buses[request.resource].put({"type": "DELETED", "object": raw})
        return copy.deepcopy(raw)

    async def _serve_fetch(self, request: rendering.Request) -> rendering.Payload:
        return copy.deepcopy(self.objects[self._require_object(request)].raw)

    def _injected_fault(self, request: rendering.Request) -> Fault | None:
        for fault in self.faults:
            matched = fault.method == request.method.value and fault.path.search(
                request.url.path_qs
            )
            if fault.times > 0 and matched:
                fault.times -= 1
                return fault
        return None

    def _admit_new_object(self, request: rendering.Request) -> None:
        metadata = request.data.setdefault("metadata", {})
        name = metadata.get("name")
        if not name:
            raise status_error(422, "metadata.name: Required value: name is required")
        key = (request.resource, request.namespace, name)
        if key in self.objects and not self.objects[key].deleted:
            plural = f"{request.resource.plural}.{request.resource.group}".rstrip(".")
            raise status_error(409, f'{plural} "{name}" already exists')
        if request.namespace:
            metadata["namespace"] = request.namespace
        metadata["uid"] = str(uuid.uuid4())
        metadata["creationTimestamp"] = now_rfc3339()
        metadata["generation"] = 1

    def _require_object(self, request: rendering.Request) -> Any:
        key = (request.resource, request.namespace, request.name)
        if key not in self.objects or self.objects[key].deleted:
            plural = f"{request.resource.plural}.{request.resource.group}".rstrip(".")
            raise status_error(404, f'{plural} "{request.name}" not found')
        return key

    # --- reads ----------------------------------------------------------------------------

    def _matching(self, request: rendering.Request) -> list[dict[str, Any]]:
        selector = parse_selector(request.params.get("labelSelector", ""))
        fields = parse_selector(request.params.get("fieldSelector", ""))
        found = []
        for (resource, namespace, _name), obj in self.objects.items():
            if resource != request.resource or obj.deleted:
                continue
            if request.namespace is not None and namespace != request.namespace:
                continue
            raw = copy.deepcopy(obj.raw)
            labels = raw.get("metadata", {}).get("labels") or {}
            if matches(labels, selector) and matches_fields(raw, fields):
                found.append(raw)
        return found

    async def _serve_list(self, request: rendering.Request) -> rendering.Payload:
        info = self.resources[request.resource]
        group_version = "/".join(p for p in (request.resource.group, request.resource.version) if p)
        async with self._lock:
            items = self._matching(request)
            version = str(self.resource_version)
        return {
            "apiVersion": group_version,
            "kind": f"{info.kind}List",
            "metadata": {"resourceVersion": version},
            "items": items,
        }

    async def _serve_watch(self, request: rendering.Request) -> rendering.Response:
        return rendering.Response(
            headers={"Content-Type": "application/json"},
            payload=self._watch_events(request),
        )

    async def _watch_events(self, request: rendering.Request) -> AsyncIterator[Any]:
        """ADDED for the current state, or a replay since ``resourceVersion``, then live.

        A resourceVersion older than the compacted history gets a 410 Gone ERROR event,
        as on a real server whose etcd history was compacted.
        """
        yield b""
        selector = parse_selector(request.params.get("labelSelector", ""))
        since = request.params.get("resourceVersion")
        timeout = float(request.params.get("timeoutSeconds") or 3600)
        generation = self.watch_generation
        bus = self._buses[request.resource]
        async with self._lock:
            mark = await bus.mark()
            if since and since != "0" and int(since) < self.compacted_before:
                yield gone_event(since)
                return
            if since and since != "0":
                backlog = [event for rv, event in self.history if rv > int(since)]
            else:
                backlog = [{"type": "ADDED", "object": obj} for obj in self._matching(request)]
        for event in backlog:
            if self._event_matches(request, event, selector):
                yield event
        queue: asyncio.Queue[Any] = asyncio.Queue()
        forwarder = asyncio.create_task(forward(bus, mark, queue))
        dropped = asyncio.create_task(self.dropped.wait())
        getter: asyncio.Task[Any] | None = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while self.watch_generation == generation and loop.time() < deadline:
                getter = getter or asyncio.create_task(queue.get())
                await asyncio.wait(
                    [getter, dropped], timeout=deadline - loop.time(),
                    return_when=asyncio.FIRST_COMPLETED,
                )  # fmt: skip
                if getter.done():
                    event, getter = getter.result(), None
                    if self._event_matches(request, event, selector):
                        yield event
        finally:
            for task in (forwarder, dropped, getter):
                if task is not None:
                    task.cancel()

    def _event_matches(
        self, request: rendering.Request, event: dict[str, Any], selector: list[Any]
    ) -> bool:
        metadata = event["object"].get("metadata", {})
        if request.namespace is not None and metadata.get("namespace") != request.namespace:
            return False
        return matches(metadata.get("labels") or {}, selector)

    async def _serve_log(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        key = (request.namespace or "", request.name or "")
        pod_key = (kmock.resource("v1/pods"), request.namespace, request.name)
        if pod_key not in self.objects or self.objects[pod_key].deleted:
            raise status_error(404, f'pods "{request.name}" not found')
        stamped = request.params.get("timestamps") in ("true", "True", "1")
        entries = self.pod_logs.get(key, [])
        if "sinceSeconds" in request.params:
            since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(
                seconds=int(request.params["sinceSeconds"])
            )
            entries = [
                (ts, text) for ts, text in entries if ts >= since.strftime("%Y-%m-%dT%H:%M:%S")
            ]
        lines = [f"{ts} {text}" if stamped else text for ts, text in entries]
        if "tailLines" in request.params:
            lines = lines[-int(request.params["tailLines"]) :]
        if request.params.get("follow") not in ("true", "True", "1"):
            return aiohttp.web.Response(text="".join(f"{line}\n" for line in lines))
        return await rendering.Response(payload=self._follow_log(key, pod_key))(request)

    async def _follow_log(self, key: tuple[str, str], pod_key: Any) -> AsyncIterator[bytes]:
        """Stream the log and what gets appended, until the pod's phase is terminal."""
        yield b""
        sent = 0
        while True:
            lines = self.pod_logs.get(key, [])
            for _stamp, line in lines[sent:]:
                yield f"{line}\n".encode()
            sent = len(lines)
            phase = self.objects[pod_key].get("status", {}).get("phase")
            if phase in ("Succeeded", "Failed"):
                return
            await asyncio.sleep(0.05)

    # e.g. /api/v1: kmock answers groupVersion "/v1"; kubectl needs "v1".
    async def _serve_version(self, request: rendering.Request) -> rendering.Payload:
        payload = await super()._serve_version(request)
        payload["groupVersion"] = payload["groupVersion"].lstrip("/")
        return payload

    async def _serve_server_version(self, request: rendering.Request) -> rendering.Payload:
        payload = await super()._serve_server_version(request)
        payload.update(minor="31", gitVersion="v1.31.0-kmock")
        return payload


class _BusFactory(dict):  # type: ignore[type-arg]
    """A defaultdict of :class:`RecordingBus` that knows its emulator."""

    def __init__(self, emulator: ApiServerEmulator) -> None:
        super().__init__()
        self.emulator = emulator

    def __missing__(self, key: Any) -> RecordingBus:
        bus = self[key] = RecordingBus(self.emulator)
        return bus


async def forward(bus: aiobus.Bus[Any], mark: Any, queue: asyncio.Queue[Any]) -> None:
    """Move bus events into a queue, which (unlike a generator) survives wait_for timeouts."""
    async for event in bus.stream(since=mark):
        await queue.put(event)
