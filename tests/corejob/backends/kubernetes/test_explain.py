"""Pending pods explained in plain words, naming the pod and the cause."""

from __future__ import annotations

import pytest

from corejob.backends.kubernetes.explain import explain_pending
from corejob.job.kubeflow import REPLICA_INDEX_LABEL, REPLICA_TYPE_LABEL


def pending_pod(message: str) -> dict:
    labels = {REPLICA_TYPE_LABEL: "worker", REPLICA_INDEX_LABEL: "1"}
    return {"metadata": {"name": "j-worker-1", "labels": labels},
            "status": {"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "False", "message": message}]}}  # fmt: skip


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("0/4 nodes are available: 4 Insufficient nvidia.com/gpu.", "enough free nvidia.com/gpu"),
        ("0/2 nodes are available: 2 node(s) had untolerated taint {gpu: true}.", "tainted"),
        ("pod has unbound immediate PersistentVolumeClaims.", "PersistentVolumeClaim is not bound"),
        ("0/3 nodes are available: 3 Insufficient memory.", "enough free memory"),
    ],
)
def test_explanations_name_the_pod_and_the_cause(message, expected):
    (reason,) = explain_pending([pending_pod(message)], [])
    assert reason.startswith("worker-1 cannot") or reason.startswith("worker-1 is waiting")
    assert expected in reason


def test_no_pods_points_at_the_operator():
    assert "training operator running" in explain_pending([], [])[0]
