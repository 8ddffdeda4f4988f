"""The real control plane behaves as the controller's tests rely on (tests/support/kube_real.py).

Each property checked here is one the emulator lacks and a later test depends on: the
restricted user holds only the project's Role, pods owned by a job are collected with it,
a finalizer makes a foreground deletion linger, quotas are enforced, and the CLI tools
(kubectl 1.35, helm v4) talk to the server.
"""

from __future__ import annotations

import json

from tests.support.kube_real import JOBS, KubeNamespace, RealCluster
from tests.support.kube_server import USER
from tests.support.wait import wait_until


def a_job(name: str) -> dict:
    container = {"name": "pytorch", "image": "trainer"}
    replica = {"replicas": 1, "template": {"spec": {"containers": [container]}}}
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": name},
        "spec": {"pytorchReplicaSpecs": {"Master": replica}},
    }


def test_the_server_is_kubernetes_1_20_with_the_crds(real_cluster: RealCluster):
    assert real_cluster.version == "v1.20.2"
    groups = real_cluster.kubectl("api-resources", "-o", "name").stdout.split()
    assert "pytorchjobs.kubeflow.org" in groups
    assert {"workloads.kueue.x-k8s.io", "localqueues.kueue.x-k8s.io"} <= set(groups)
    client = json.loads(real_cluster.kubectl("version", "-o", "json").stdout)["clientVersion"]
    assert client["minor"] == "35"
    assert real_cluster.helm("version", "--short").stdout.startswith("v4.")


def test_the_restricted_user_holds_only_the_controller_role(real_namespace: KubeNamespace):
    cluster, ns = real_namespace.cluster, real_namespace.name
    created, _ = cluster.request("POST", JOBS.format(ns=ns), a_job("mine"), user=USER)
    secrets, answer = cluster.request("GET", f"/api/v1/namespaces/{ns}/secrets", user=USER)
    elsewhere, _ = cluster.request("GET", JOBS.format(ns="default"), user=USER)
    assert created == 201
    assert secrets == 403 and "corejob-user" in answer["message"]
    assert elsewhere == 403
    assert [e["verb"] for e in real_namespace.requests(resource="pytorchjobs")] == ["create"]


def test_foreground_deletion_waits_for_owned_pods(real_namespace: KubeNamespace):
    cluster, ns = real_namespace.cluster, real_namespace
    cluster.ok("POST", JOBS.format(ns=ns.name), a_job("held"))
    pod = ns.add_pod("held", "master", 0, finalizer=True)
    path = f"{JOBS.format(ns=ns.name)}/held"
    cluster.ok("DELETE", path, {"propagationPolicy": "Foreground"})

    dying = wait_until(
        lambda: (ns.job("held") or {}).get("metadata", {}).get("deletionTimestamp"),
        30,
        "the job to be marked for deletion",
    )
    assert dying and ns.job("held") is not None  # still there: its pod holds it
    ns.release(pod)
    wait_until(lambda: ns.job("held") is None, 60, "the garbage collector to remove the job")
