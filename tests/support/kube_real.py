"""The real API server as tests use it: :class:`RealCluster` (session) and
:class:`KubeNamespace` (one fresh namespace per test), plus their pytest fixtures.

Fixtures (registered for the whole suite by ``tests/conftest.py``):

- ``real_cluster`` (session): etcd + kube-apiserver v1.20.2 + kube-controller-manager on
  loopback, the PyTorchJob CRD and Kueue's CRDs installed; the server's version is printed
  in the test log. Everything is torn down at the end of the session, also on failure.
- ``real_namespace``: a new namespace in which the restricted user (client cert
  ``corejob-user``) holds only the project's ``corejob-controller`` Role
  (``manifests/base/rbac-controller.yaml``); ``KUBECONFIG`` points at that user's kubeconfig.

API in brief::

    real_cluster.version, .admin_kubeconfig, .user_kubeconfig
    real_cluster.kubectl(*args), .helm(*args), .request(method, path, body)
    real_cluster.install_crd(path), .new_namespace(prefix)
    ns = real_namespace; ns.name, ns.kubeconfig (restricted user), ns.admin_kubeconfig
    ns.job(name), ns.jobs(selector), ns.set_condition(job, "Running"), ns.patch_status(...)
    ns.add_pod(job, "master", 0, phase="Failed", exit_code=1, finalizer=False)
    ns.requests(verb="create", resource="pytorchjobs")  # the restricted user's, from the audit log

No kubelet or operator runs: pods exist only as the test creates them (owned by their job,
so the garbage collector and foreground deletion treat them as the operator's would), and
job/pod status only as the test PATCHes it.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.kube_server import (
    ADMIN,
    OPERATOR,
    REPO,
    USER,
    ControlPlane,
    remove_etcd_data,
    start_control_plane,
    start_controller_manager,
    wait_for,
    write_kubeconfig,
)
from tests.support.kube_wire import now_rfc3339
from tests.support.wait import wait_until

PYTORCHJOB_CRD = REPO / "manifests" / "crds" / "kubeflow.org_pytorchjobs.yaml"
KUEUE_CRDS = sorted((REPO / "tests" / "infra" / "crds").glob("kueue.x-k8s.io_*.yaml"))
CONTROLLER_ROLE = REPO / "manifests" / "base" / "rbac-controller.yaml"
JOBS = "/apis/kubeflow.org/v1/namespaces/{ns}/pytorchjobs"
MERGE_PATCH = "application/merge-patch+json"
HOLD_FINALIZER = "corejob.test/hold"


LIST_MAP_KEYS = ("x-kubernetes-list-type", "x-kubernetes-list-map-keys")


def strip_for_1_20(value: Any, lenient: bool = False) -> Any:
    """A CRD as v1.20 accepts it: no CEL rules (``x-kubernetes-validations`` came in 1.25)
    and no descriptions (Kueue's Workload CRD is 1.4 MB with them: near etcd's limit).
    ``lenient`` (Kueue's CRDs): also no ``default: ""``, which 1.20 rejects as null there,
    and so no list-map markers, which need their keys defaulted (they only steer
    server-side apply merges)."""
    if isinstance(value, dict):
        dropped = {"x-kubernetes-validations", "description"}
        if lenient and value.get("x-kubernetes-list-type") == "map":
            dropped |= set(LIST_MAP_KEYS)
        return {
            key: strip_for_1_20(item, lenient)
            for key, item in value.items()
            if key not in dropped and not (lenient and key == "default" and item == "")
        }
    if isinstance(value, list):
        return [strip_for_1_20(item, lenient) for item in value]
    return value


class RealCluster:
    """A running control plane and the admin's/user's ways into it."""

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane
        self.url = plane.url
        self.version = plane.version
        self.root = plane.root
        self.admin_kubeconfig = self.kubeconfig(ADMIN, "default")
        self.user_kubeconfig = self.kubeconfig(USER, "default")
        self._namespaces = 0
        self._audit: list[dict[str, Any]] = []
        self._audit_offset = 0

    def kubeconfig(self, user: str, namespace: str) -> Path:
        path = self.root / f"kubeconfig-{user}-{namespace}"
        if not path.exists():
            write_kubeconfig(path, self.url, self.plane.pki, user, namespace)
        return path

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        user: str = ADMIN,
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        return self.plane.request(method, path, body, user, content_type)

    def ok(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        """A request that must succeed (2xx); its body."""
        status, answer = self.request(method, path, body, **kwargs)
        assert 200 <= status < 300, f"{method} {path}: {status} {answer}"
        return answer

    def run_tool(
        self,
        tool: str,
        *args: str,
        user: str = ADMIN,
        namespace: str = "default",
        check: bool = True,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        command = [
            str(self.plane.tools[tool]),
            "--kubeconfig",
            str(self.kubeconfig(user, namespace)),
            *args,
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if check:
            assert done.returncode == 0, f"{tool} {' '.join(args)}: {done.stderr}"
        return done

    def kubectl(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return self.run_tool("kubectl", *args, **kwargs)

    def helm(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return self.run_tool("helm", *args, **kwargs)

    def install_crd(self, path: Path, lenient: bool = False) -> str:
        """Create (or replace) a CRD and wait until its API is served; its name."""
        return self.install_crds([path], lenient)[0]

    def install_crds(self, paths: list[Path], lenient: bool = False) -> list[str]:
        """Create (or replace) CRDs, then wait until each API is served (the server
        builds their schemas in parallel); their names."""
        crds = [strip_for_1_20(yaml.safe_load(path.read_text()), lenient) for path in paths]
        base = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        for crd in crds:
            name = crd["metadata"]["name"]
            if self.request("GET", f"{base}/{name}")[0] == 200:
                self.ok("DELETE", f"{base}/{name}")
                wait_until(
                    lambda name=name: self.request("GET", f"{base}/{name}")[0] == 404,
                    60,
                    f"CRD {name} to be deleted",
                )
            self.ok("POST", base, crd)
        for crd in crds:
            group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
            for version in (v["name"] for v in crd["spec"]["versions"] if v.get("served")):

                def served(version: str = version, group: str = group, plural: str = plural):
                    status, body = self.request("GET", f"/apis/{group}/{version}")
                    return status == 200 and any(r["name"] == plural for r in body["resources"])

                # `kubectl wait --for condition=established` can fail at once on a new CRD.
                wait_until(served, 90, f"{plural}.{group}/{version} to be served", interval=0.1)
        return [crd["metadata"]["name"] for crd in crds]

    def new_namespace(self, prefix: str = "t") -> KubeNamespace:
        self._namespaces += 1
        name = f"{prefix}-{self._namespaces}-{int(time.time() * 1000) % 100000}"
        self.ok("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
        role = next(
            doc for doc in yaml.safe_load_all(CONTROLLER_ROLE.read_text()) if doc["kind"] == "Role"
        )
        rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{name}"
        self.ok("POST", f"{rbac}/roles", role)
        binding = {
            "metadata": {"name": "corejob-user"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": role["metadata"]["name"],
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": USER}],
        }
        self.ok("POST", f"{rbac}/rolebindings", binding)
        # Pods are admitted only once the namespace's default ServiceAccount exists.
        wait_for(
            self.plane,
            f"/api/v1/namespaces/{name}/serviceaccounts/default",
            60,
            f"the default ServiceAccount of {name}",
        )
        return KubeNamespace(self, name)

    def audit(self) -> list[dict[str, Any]]:
        """Every non-admin request the server has answered (its audit log), oldest first.
        Read incrementally: only complete lines, from where the last call stopped."""
        log = self.plane.audit_log
        if log.exists():
            with log.open("rb") as stream:
                stream.seek(self._audit_offset)
                text = stream.read()
            complete = text[: text.rfind(b"\n") + 1]
            self._audit_offset += len(complete)
            self._audit += [json.loads(line) for line in complete.splitlines() if line.strip()]
        return list(self._audit)


class KubeNamespace:
    """One test's namespace; plays the training operator and kubelet through the API."""

    def __init__(self, cluster: RealCluster, name: str) -> None:
        self.cluster = cluster
        self.name = self.namespace = name
        self.kubeconfig = cluster.kubeconfig(USER, name)
        self.admin_kubeconfig = cluster.kubeconfig(ADMIN, name)

    @property
    def operator(self) -> KubeNamespace:
        """The same object: it is the operator (kept for tests written against the emulator)."""
        return self

    # --- reading ------------------------------------------------------------------------

    def job(self, name: str) -> dict[str, Any] | None:
        status, body = self.cluster.request("GET", f"{JOBS.format(ns=self.name)}/{name}")
        return body if status == 200 else None

    def jobs(self, selector: str = "") -> list[dict[str, Any]]:
        query = f"?labelSelector={selector}" if selector else ""
        return self.cluster.ok("GET", JOBS.format(ns=self.name) + query)["items"]

    def requests(
        self, verb: str | None = None, resource: str | None = None, user: str = USER
    ) -> list[dict[str, Any]]:
        """The audit events of ``user``'s requests in this namespace (the code under test's),
        filtered by verb and resource; subresources (``status``, ``log``) are not ``resource``."""
        found = []
        for event in self.cluster.audit():
            ref = event.get("objectRef") or {}
            if event["user"]["username"] != user or ref.get("namespace") != self.name:
                continue
            if verb and event["verb"] != verb:
                continue
            if resource and (ref.get("resource") != resource or ref.get("subresource")):
                continue
            found.append(event)
        return found

    # --- the operator's part ------------------------------------------------------------

    def patch_status(self, path: str, status: dict[str, Any]) -> dict[str, Any]:
        """PATCH ``<path>/status`` as the operator/kubelet would (a create ignores status)."""
        return self.cluster.ok(
            "PATCH", f"{path}/status", {"status": status}, content_type=MERGE_PATCH, user=OPERATOR
        )

    def set_condition(
        self, job: str, state: str, reason: str = "", message: str = "", replicas: Any = None
    ) -> None:
        """Append ``state`` as the newest true condition (older ones flip to False)."""
        path = f"{JOBS.format(ns=self.name)}/{job}"
        current = self.cluster.ok("GET", path)
        conditions = [
            dict(c, status="False") for c in current.get("status", {}).get("conditions", [])
        ]
        conditions.append(
            {
                "type": state,
                "status": "True",
                "reason": reason or f"PyTorchJob{state}",
                "message": message or f"PyTorchJob {job} is {state.lower()}.",
                "lastTransitionTime": now_rfc3339(),
                "lastUpdateTime": now_rfc3339(),
            }
        )
        status: dict[str, Any] = {"conditions": conditions}
        if replicas is not None:
            status["replicaStatuses"] = replicas
        self.patch_status(path, status)

    def add_pod(
        self,
        job: str,
        replica: str = "master",
        index: int = 0,
        phase: str = "Running",
        exit_code: int | None = None,
        waiting_reason: str | None = None,
        finalizer: bool = False,
    ) -> str:
        """A pod of ``job`` as the operator makes it (owner reference, replica labels), with
        the status a kubelet would report. ``finalizer``: it lingers when deleted until
        :meth:`release` (a pod in its termination grace period)."""
        owner = self.cluster.ok("GET", f"{JOBS.format(ns=self.name)}/{job}")["metadata"]
        name = f"{job}-{replica}-{index}"
        metadata: dict[str, Any] = {
            "name": name,
            "labels": {
                "training.kubeflow.org/job-name": job,
                "training.kubeflow.org/replica-type": replica,
                "training.kubeflow.org/replica-index": str(index),
            },
            "ownerReferences": [
                {
                    "apiVersion": "kubeflow.org/v1",
                    "kind": "PyTorchJob",
                    "name": job,
                    "uid": owner["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        }
        if finalizer:
            metadata["finalizers"] = [HOLD_FINALIZER]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": metadata,
            "spec": {"containers": [{"name": "pytorch", "image": "trainer"}]},
        }
        pods = f"/api/v1/namespaces/{self.name}/pods"
        self.cluster.ok("POST", pods, pod, user=OPERATOR)
        container: dict[str, Any] = {
            "name": "pytorch",
            "ready": phase == "Running",
            "image": "trainer",
            "imageID": "",
            "restartCount": 0,
        }
        if exit_code is not None:
            container["state"] = {"terminated": {"exitCode": exit_code, "reason": "Error"}}
        elif waiting_reason:
            container["state"] = {"waiting": {"reason": waiting_reason, "message": "back-off"}}
        else:
            container["state"] = {"running": {"startedAt": now_rfc3339()}}
        self.patch_status(f"{pods}/{name}", {"phase": phase, "containerStatuses": [container]})
        return name

    def set_pod_phase(self, pod: str, phase: str) -> None:
        self.patch_status(f"/api/v1/namespaces/{self.name}/pods/{pod}", {"phase": phase})

    def release(self, pod: str) -> None:
        """Drop the test finalizer: a deleted pod then goes (and its job with it)."""
        path = f"/api/v1/namespaces/{self.name}/pods/{pod}"
        self.cluster.ok(
            "PATCH",
            path,
            {"metadata": {"finalizers": None}},
            content_type=MERGE_PATCH,
            user=OPERATOR,
        )

    def add_event(self, pod: str, reason: str, message: str, kind: str = "Pod") -> None:
        event = {
            "metadata": {"name": f"{pod}.{reason.lower()}"},
            "involvedObject": {"kind": kind, "name": pod, "namespace": self.name},
            "reason": reason,
            "message": message,
            "type": "Warning",
            "firstTimestamp": now_rfc3339(),
            "lastTimestamp": now_rfc3339(),
            "count": 1,
        }
        self.cluster.ok("POST", f"/api/v1/namespaces/{self.name}/events", event, user=OPERATOR)


def report(config: pytest.Config, line: str) -> None:
    """A line in the test log itself (not captured with a test's output)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(line)


@pytest.fixture(scope="session")
def real_cluster(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[RealCluster]:
    """The control plane for the whole session (see the module docstring)."""
    started = time.monotonic()
    plane = start_control_plane(tmp_path_factory.mktemp("kube"))
    try:
        up = time.monotonic()
        cluster = RealCluster(plane)
        cluster.install_crd(PYTORCHJOB_CRD)
        cluster.install_crds(KUEUE_CRDS, lenient=True)
        crds = time.monotonic()
        start_controller_manager(plane)
        # The controller-manager is up once it has made the default namespace's SA.
        wait_for(
            plane,
            "/api/v1/namespaces/default/serviceaccounts/default",
            60,
            "kube-controller-manager to create the default ServiceAccount",
        )
        done = time.monotonic()
        report(
            pytestconfig,
            f"real Kubernetes API server {plane.version} at {plane.url} ready in "
            f"{done - started:.1f} s (etcd + kube-apiserver {up - started:.1f} s, CRDs "
            f"{crds - up:.1f} s, kube-controller-manager {done - crds:.1f} s; logs in "
            f"{plane.root})",
        )
        yield cluster
    finally:
        plane.stop()
        remove_etcd_data(plane)


@pytest.fixture
def real_namespace(real_cluster: RealCluster, monkeypatch: pytest.MonkeyPatch) -> KubeNamespace:
    """A fresh namespace; KUBECONFIG = the restricted user's, with that namespace."""
    namespace = real_cluster.new_namespace()
    monkeypatch.setenv("KUBECONFIG", str(namespace.kubeconfig))
    return namespace
