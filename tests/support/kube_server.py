"""A real Kubernetes control plane for tests: etcd + kube-apiserver + kube-controller-manager.

The binaries come from ``tests/infra/kube-server/`` (Debian's etcd; the API server and
controller-manager v1.20.2 built from Debian's source package, cached outside the repo),
helm and kubectl from the same install step. :func:`start_control_plane` makes the
certificates (a CA, a serving cert for 127.0.0.1, client certs: an admin in
``system:masters`` and one restricted user), starts the three processes on free loopback
ports, waits for ``/readyz`` by polling and returns a :class:`ControlPlane`; ``stop()``
ends them (the fixture calls it on any exit). No kubelet, scheduler or training operator
runs: tests play their part through the API (:mod:`tests.support.kube_real`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.support.wait import wait_until

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "tests" / "infra" / "kube-server"
ADMIN, USER = "admin", "corejob-user"
# The identity tests use to play the training operator and kubelet (an admin too, but
# audited apart: tests replay its status writes in order with the CLI's requests).
OPERATOR = "training-operator"
USER_GROUP = "corejob-users"
# The controllers a namespace needs to behave like a cluster's: owner-reference garbage
# collection, namespace deletion, the default ServiceAccount (+ token), quota enforcement.
CONTROLLERS = "garbagecollector,namespace,serviceaccount,serviceaccount-token,resourcequota"
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "None", "users": [ADMIN]},
        # Job writes with their bodies: what the CLI sent, and the operator's state changes.
        {
            "level": "Request",
            "verbs": ["create", "patch"],
            "resources": [
                {"group": "kubeflow.org", "resources": ["pytorchjobs", "pytorchjobs/status"]}
            ],
        },
        {"level": "Metadata"},
    ],
}


def tool_paths() -> dict[str, Path]:
    """Where install-deps.sh puts things (its env.sh, read by bash: one source of truth)."""
    script = f"source {INFRA / 'env.sh'}; echo $COREJOB_KUBE_SERVER_DIR; echo $COREJOB_KUBE_TOOLS"
    server, tools = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, check=True
    ).stdout.split()
    return {
        "kube-apiserver": Path(server) / "kube-apiserver",
        "kube-controller-manager": Path(server) / "kube-controller-manager",
        "etcd": Path(shutil.which("etcd") or "/usr/bin/etcd"),
        "helm": Path(tools) / "helm",
        "kubectl": Path(tools) / "kubectl",
    }


def ensure_tools() -> dict[str, Path]:
    """Install/build what is missing (quick when present; a fresh machine builds once)."""
    paths = tool_paths()
    if not all(path.exists() for path in paths.values()):
        subprocess.run([str(INFRA / "install-deps.sh")], check=True)
    return paths


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_certificates(pki: Path) -> None:
    """CA, apiserver serving cert (SAN 127.0.0.1), admin/user client certs, SA key pair."""
    pki.mkdir(parents=True)
    days = "2"
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        f"{pki}/ca.key",
        "-out",
        f"{pki}/ca.crt",
        "-days",
        days,
        "-subj",
        "/CN=corejob-test-ca",
    )
    subjects = {
        "server": "/CN=kube-apiserver",
        ADMIN: "/O=system:masters/CN=admin",
        OPERATOR: f"/O=system:masters/CN={OPERATOR}",
        USER: f"/O={USER_GROUP}/CN={USER}",
    }
    ext = pki / "server.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n")
    for name, subject in subjects.items():
        openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{pki}/{name}.key",
            "-out",
            f"{pki}/{name}.csr",
            "-subj",
            subject,
        )
        extra = ["-extfile", str(ext)] if name == "server" else []
        openssl(
            "x509",
            "-req",
            "-in",
            f"{pki}/{name}.csr",
            "-CA",
            f"{pki}/ca.crt",
            "-CAkey",
            f"{pki}/ca.key",
            "-CAcreateserial",
            "-days",
            days,
            "-out",
            f"{pki}/{name}.crt",
            *extra,
        )
    openssl("genrsa", "-out", f"{pki}/sa.key", "2048")
    openssl("rsa", "-in", f"{pki}/sa.key", "-pubout", "-out", f"{pki}/sa.pub")


def write_kubeconfig(path: Path, url: str, pki: Path, user: str, namespace: str) -> Path:
    """A kubeconfig with one context: ``user``'s client certificate, ``namespace``."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "real",
                "cluster": {"server": url, "certificate-authority": str(pki / "ca.crt")},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate": str(pki / f"{user}.crt"),
                    "client-key": str(pki / f"{user}.key"),
                },
            }
        ],
        "contexts": [
            {"name": "real", "context": {"cluster": "real", "user": user, "namespace": namespace}}
        ],
        "current-context": "real",
    }
    path.write_text(yaml.safe_dump(config))
    return path


@dataclass
class ControlPlane:
    """The running processes and how to reach them."""

    root: Path
    url: str
    tools: dict[str, Path]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    version: str = ""

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def audit_log(self) -> Path:
        return self.root / "audit.log"

    def ssl_context(self, user: str = ADMIN) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        context.load_cert_chain(str(self.pki / f"{user}.crt"), str(self.pki / f"{user}.key"))
        return context

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        user: str = ADMIN,
        content_type: str = "application/json",
        timeout: float = 15,
    ) -> tuple[int, Any]:
        """One HTTP call as ``user``: (status, decoded JSON body or text)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": content_type}
        )
        try:
            with urllib.request.urlopen(
                request, timeout=timeout, context=self.ssl_context(user)
            ) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        try:
            return status, json.loads(raw or b"null")
        except ValueError:
            return status, raw.decode(errors="replace")

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                log = (self.root / f"{name}.log").read_text()[-3000:]
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{log}")

    def ready(self, path: str = "/readyz") -> bool:
        self.check_alive()
        try:
            return self.request("GET", path, timeout=3)[0] == 200
        except (OSError, urllib.error.URLError):
            return False

    def stop(self) -> None:
        """SIGTERM each process (controller-manager first, etcd last), then SIGKILL."""
        for name in reversed(list(self.processes)):
            process = self.processes[name]
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)


def _spawn(plane: ControlPlane, name: str, args: list[str]) -> None:
    log = (plane.root / f"{name}.log").open("wb")
    plane.processes[name] = subprocess.Popen(
        args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def start_etcd(plane: ControlPlane) -> str:
    client, peer = free_port(), free_port()
    # etcd's data in memory when possible: tests never need it to survive the session.
    shm = Path("/dev/shm")
    data = Path(os.path.join(shm if shm.is_dir() else plane.root, f"etcd-{client}"))
    plane.root.joinpath("etcd-data").write_text(str(data))
    _spawn(
        plane,
        "etcd",
        [
            str(plane.tools["etcd"]),
            "--name",
            "default",
            "--data-dir",
            str(data),
            "--listen-client-urls",
            f"http://127.0.0.1:{client}",
            "--advertise-client-urls",
            f"http://127.0.0.1:{client}",
            "--listen-peer-urls",
            f"http://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls",
            f"http://127.0.0.1:{peer}",
            "--initial-cluster",
            f"default=http://127.0.0.1:{peer}",
        ],
    )
    return f"http://127.0.0.1:{client}"


def start_apiserver(plane: ControlPlane, etcd_url: str, port: int) -> None:
    pki = plane.pki
    policy = plane.root / "audit-policy.yaml"
    policy.write_text(yaml.safe_dump(AUDIT_POLICY))
    _spawn(
        plane,
        "kube-apiserver",
        [
            str(plane.tools["kube-apiserver"]),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            "--insecure-port=0",
            f"--cert-dir={plane.root / 'certs'}",
            f"--tls-cert-file={pki}/server.crt",
            f"--tls-private-key-file={pki}/server.key",
            f"--client-ca-file={pki}/ca.crt",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={pki}/sa.pub",
            f"--service-account-signing-key-file={pki}/sa.key",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--authorization-mode=RBAC",
            "--enable-priority-and-fairness=false",
            "--allow-privileged=true",
            f"--audit-policy-file={policy}",
            f"--audit-log-path={plane.audit_log}",
            "--audit-log-mode=blocking",
        ],
    )


def start_controller_manager(plane: ControlPlane) -> None:
    """Started after the CRDs exist: its garbage collector and quota controller only
    rediscover new resources every 30 s."""
    kubeconfig = write_kubeconfig(
        plane.root / "controller-manager.kubeconfig", plane.url, plane.pki, ADMIN, "default"
    )
    _spawn(
        plane,
        "kube-controller-manager",
        [
            str(plane.tools["kube-controller-manager"]),
            f"--kubeconfig={kubeconfig}",
            f"--controllers={CONTROLLERS}",
            "--leader-elect=false",
            "--port=0",
            "--secure-port=0",
            f"--service-account-private-key-file={plane.pki}/sa.key",
            f"--root-ca-file={plane.pki}/ca.crt",
            "--use-service-account-credentials=false",
        ],
    )


def start_control_plane(root: Path, timeout_s: float = 90) -> ControlPlane:
    """etcd + API server up and ready (the caller installs CRDs, then starts the
    controller-manager with :func:`start_controller_manager`)."""
    tools = ensure_tools()
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    plane = ControlPlane(root, f"https://127.0.0.1:{port}", tools)
    try:
        make_certificates(plane.pki)
        etcd_url = start_etcd(plane)
        start_apiserver(plane, etcd_url, port)
        wait_until(
            plane.ready, timeout_s, f"kube-apiserver at {plane.url} to be ready", interval=0.2
        )
        _, version = plane.request("GET", "/version")
        plane.version = str(version.get("gitVersion"))
    except BaseException:
        plane.stop()
        raise
    return plane


def remove_etcd_data(plane: ControlPlane) -> None:
    marker = plane.root / "etcd-data"
    if marker.exists():
        with contextlib.suppress(OSError):
            shutil.rmtree(marker.read_text())


def wait_for(plane: ControlPlane, path: str, timeout_s: float, what: str) -> Any:
    """Poll GET ``path`` as admin until it answers 200; its body."""

    def answer() -> Any:
        plane.check_alive()
        status, body = plane.request("GET", path)
        return body if status == 200 else None

    return wait_until(answer, timeout_s, what, interval=0.1)


def elapsed(since: float) -> str:
    return f"{time.monotonic() - since:.1f} s"
