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
    """The trainer containers of a pod spec (normally exactly one): named
    :data:`CONTAINER_NAME` in a PyTorchJob, :data:`TRAINJOB_CONTAINER_NAME` in a TrainJob."""
    names = (CONTAINER_NAME, TRAINJOB_CONTAINER_NAME)
    return [c for c in pod_spec.get("containers") or [] if c.get("name") in names]


# --- Kubeflow Trainer v2 (trainer.kubeflow.org, release v2.3.0) ---------------------------
# A TrainJob runs as a JobSet of the same name; the torch plugin injects only PET_* variables
# (PET_NNODES, PET_NPROC_PER_NODE, PET_NODE_RANK from the Job completion index,
# PET_MASTER_ADDR=<job>-node-0-0.<job>, PET_MASTER_PORT) into the container `node` of the
# replicated job `node` (pkg/runtime/framework/plugins/torch, pkg/constants).
TRAINJOB_API_VERSION = "trainer.kubeflow.org/v1alpha1"
TRAINJOB_KIND = "TrainJob"
TRAINJOB_PLURAL = "trainjobs"
TRAINING_RUNTIME_KIND = "TrainingRuntime"
TRAINING_RUNTIME_PLURAL = "trainingruntimes"
CLUSTER_TRAINING_RUNTIME_KIND = "ClusterTrainingRuntime"
DEFAULT_RUNTIME = "torch-distributed"
TRAINJOB_CONTAINER_NAME = "node"
TRAINER_REPLICATED_JOB = "node"
TRAINJOB_MASTER_PORT = 29500
PET_RESERVED_ENV = (
    "PET_NNODES",
    "PET_NPROC_PER_NODE",
    "PET_NODE_RANK",
    "PET_MASTER_ADDR",
    "PET_MASTER_PORT",
)
# TrainJob condition types (v2.3.0 sets Suspended, Complete and Failed; older releases Created).
TRAINJOB_CREATED, TRAINJOB_SUSPENDED = "Created", "Suspended"
TRAINJOB_COMPLETE, TRAINJOB_FAILED = "Complete", "Failed"

# Labels the JobSet and Job controllers put on every pod of a TrainJob.
JOBSET_NAME_LABEL = "jobset.sigs.k8s.io/jobset-name"
REPLICATED_JOB_NAME_LABEL = "jobset.sigs.k8s.io/replicatedjob-name"
JOBSET_JOB_INDEX_LABEL = "jobset.sigs.k8s.io/job-index"
JOB_COMPLETION_INDEX_LABEL = "batch.kubernetes.io/job-completion-index"


def trainjob_pod_selector(job_name: str, node_rank: int | None = None) -> str:
    """Label selector of a TrainJob's trainer pods, optionally of one node (``0``: rank 0)."""
    parts = [
        f"{JOBSET_NAME_LABEL}={job_name}",
        f"{REPLICATED_JOB_NAME_LABEL}={TRAINER_REPLICATED_JOB}",
    ]
    if node_rank is not None:
        parts.append(f"{JOB_COMPLETION_INDEX_LABEL}={node_rank}")
    return ",".join(parts)


def trainjob_master_addr(job_name: str) -> str:
    """Rank 0's address as the torch plugin sets it: pod hostname . JobSet headless service."""
    return f"{job_name}-{TRAINER_REPLICATED_JOB}-0-0.{job_name}"


def selector_text(selector: dict[str, str] | None) -> str:
    """``{"a": "1", "b": "2"}`` -> ``a=1,b=2``: a label selector, keys sorted."""
    return ",".join(f"{key}={value}" for key, value in sorted((selector or {}).items()))
