"""The Kubeflow Training Operator's names that corejob relies on, in one place.

The chart writes some of them (API version, kind, container name), the operator sets the
pod labels, and every backend reads them: the Kubernetes backend to find pods, the local
backends to play the operator faithfully. A test checks them against the Kubeflow SDK's
own constants and against what the chart renders.
"""

from __future__ import annotations

import re

JOB_API_VERSION = "kubeflow.org/v1"
JOB_KIND = "PyTorchJob"
JOB_PLURAL = "pytorchjobs"
#: The operator injects MASTER_ADDR/RANK/... into, and reads exit codes from, this container.
CONTAINER_NAME = "pytorch"
MASTER, WORKER = "Master", "Worker"
REPLICA_TYPES = (MASTER, WORKER)

# Labels the operator puts on every pod of a job (training-operator release-1.9).
JOB_NAME_LABEL = "training.kubeflow.org/job-name"
REPLICA_TYPE_LABEL = "training.kubeflow.org/replica-type"
REPLICA_INDEX_LABEL = "training.kubeflow.org/replica-index"
JOB_ROLE_LABEL = "training.kubeflow.org/job-role"

# Pods are <job>-master-0 / <job>-worker-<i>, each with a Service of the same name: the
# job name must be a DNS-1035 label short enough to leave room for that suffix. The chart
# enforces the same limit when it builds names (tests/chart/test_job_name.py ties them).
MAX_JOB_NAME_LENGTH = 50
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def pod_selector(job_name: str, replica_type: str | None = None) -> str:
    """Label selector of a job's pods, optionally of one replica type (``master``)."""
    parts = [f"{JOB_NAME_LABEL}={job_name}"]
    if replica_type:
        parts.append(f"{REPLICA_TYPE_LABEL}={replica_type.lower()}")
    return ",".join(parts)


def trainer_containers(pod_spec: dict) -> list[dict]:
    """The containers named :data:`CONTAINER_NAME` in a pod spec (normally exactly one)."""
    return [c for c in pod_spec.get("containers") or [] if c.get("name") == CONTAINER_NAME]
