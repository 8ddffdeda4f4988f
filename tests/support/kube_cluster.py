"""A fake cluster for tests: the API emulator on 127.0.0.1 in a thread, a kubeconfig for it,
and an ``Operator`` that changes job/pod state over HTTP the way the training operator does.

Everything goes through real HTTP so that the controller, ``kubectl`` and the SDK see the
same API a cluster would give them. The operator's requests carry their own User-Agent so
benchmarks can count the controller's requests alone.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import kmock
import yaml

from tests.support.kube_emulator import ApiServerEmulator
from tests.support.kube_wire import now_rfc3339

OPERATOR_AGENT = "fake-training-operator/1.0"
JOBS = "/apis/kubeflow.org/v1/namespaces/{ns}/pytorchjobs"


class FakeCluster:
    """The emulator served from a background event loop; use as a context manager."""

    def __init__(self, namespace: str = "team-a") -> None:
        self.namespace = namespace
        self.emulator = ApiServerEmulator()
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._serve, name="kube-emulator", daemon=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with self.emulator, kmock.Server(self.emulator) as server:
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()
            self.emulator.drop_watches()
            await asyncio.sleep(0.3)

    def __enter__(self) -> FakeCluster:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the API emulator did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def call(self, function: Any, *args: Any) -> Any:
        """Run ``function(*args)`` on the emulator's loop (it is not thread-safe)."""

        async def run() -> Any:
            return function(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    def write_kubeconfig(self, path: Path, user: str = "alice") -> Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "emulated", "cluster": {"server": self.url}}],
            "users": [{"name": user, "user": {"token": "test-token"}}],
            "contexts": [
                {
                    "name": "emulated",
                    "context": {"cluster": "emulated", "user": user, "namespace": self.namespace},
                }
            ],
            "current-context": "emulated",
        }
        path.write_text(yaml.safe_dump(config))
        return path

    def controller_requests(self) -> list[Any]:
        """Requests not sent by the fake operator (i.e. by the code under test)."""
        return [r for r in self.emulator.requests if r.headers.get("User-Agent") != OPERATOR_AGENT]

    def job(self, name: str) -> dict[str, Any] | None:
        status, body = self.operator.request("GET", f"{JOBS.format(ns=self.namespace)}/{name}")
        return body if status == 200 else None

    def jobs(self, selector: str = "") -> list[dict[str, Any]]:
        query = f"?labelSelector={selector}" if selector else ""
        _, body = self.operator.request("GET", JOBS.format(ns=self.namespace) + query)
        return body["items"]

    @property
    def operator(self) -> Operator:
        return Operator(self)


class Operator:
    """What the Kubeflow training operator (and kubelet) would do, as API calls."""

    def __init__(self, cluster: FakeCluster) -> None:
        self.cluster = cluster
        self.url = cluster.url
        self.namespace = cluster.namespace

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        content_type = "application/merge-patch+json" if method == "PATCH" else "application/json"
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Content-Type": content_type, "User-Agent": OPERATOR_AGENT},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def set_condition(
        self, job: str, state: str, reason: str = "", message: str = "", replicas: Any = None
    ) -> None:
        """Append ``state`` as the newest true condition (older ones flip to False)."""
        path = f"{JOBS.format(ns=self.namespace)}/{job}"
        _, current = self.request("GET", path)
        previous = current.get("status", {}).get("conditions", [])
        conditions = [dict(c, status="False") for c in previous]
        conditions.append(
            {
                "type": state,
                "status": "True",
                "reason": reason or f"PyTorchJob{state}",
                "message": message or f"PyTorchJob {job} is {state.lower()}.",
                "lastTransitionTime": now_rfc3339(),
            }
        )
        status: dict[str, Any] = {"conditions": conditions}
        if replicas is not None:
            status["replicaStatuses"] = replicas
        code, body = self.request("PATCH", f"{path}/status", {"status": status})
        assert code == 200, body

    def add_pod(
        self,
        job: str,
        replica: str = "master",
        index: int = 0,
        phase: str = "Running",
        logs: list[str] | None = None,
        exit_code: int | None = None,
        waiting_reason: str | None = None,
    ) -> str:
        name = f"{job}-{replica}-{index}"
        container: dict[str, Any] = {"name": "pytorch", "ready": phase == "Running"}
        if exit_code is not None:
            container["state"] = {"terminated": {"exitCode": exit_code, "reason": "Error"}}
        elif waiting_reason:
            container["state"] = {"waiting": {"reason": waiting_reason, "message": "back-off"}}
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "labels": {
                    "training.kubeflow.org/job-name": job,
                    "training.kubeflow.org/replica-type": replica,
                    "training.kubeflow.org/replica-index": str(index),
                },
            },
            "spec": {"containers": [{"name": "pytorch", "image": "trainer"}]},
            "status": {"phase": phase, "containerStatuses": [container]},
        }
        code, body = self.request("POST", f"/api/v1/namespaces/{self.namespace}/pods", pod)
        assert code == 201, body
        if logs:
            self.cluster.call(self.cluster.emulator.append_log, self.namespace, name, logs)
        return name

    def log(self, pod: str, *lines: str, age_s: float = 0) -> None:
        """The pod's container printed ``lines`` ``age_s`` seconds ago."""
        emulator = self.cluster.emulator
        self.cluster.call(emulator.append_log, self.namespace, pod, list(lines), age_s)

    def set_pod_phase(self, pod: str, phase: str) -> None:
        path = f"/api/v1/namespaces/{self.namespace}/pods/{pod}"
        code, body = self.request("PATCH", path, {"status": {"phase": phase}})
        assert code == 200, body

    def add_event(self, pod: str, reason: str, message: str, kind: str = "Pod") -> None:
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{pod}.{reason.lower()}"},
            "involvedObject": {"kind": kind, "name": pod, "namespace": self.namespace},
            "reason": reason,
            "message": message,
            "type": "Warning",
            "lastTimestamp": now_rfc3339(),
        }
        code, body = self.request("POST", f"/api/v1/namespaces/{self.namespace}/events", event)
        assert code == 201, body


@contextmanager
def fake_cluster(tmp_path: Path, namespace: str = "team-a") -> Iterator[FakeCluster]:
    with FakeCluster(namespace) as cluster:
        cluster.kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
        yield cluster
