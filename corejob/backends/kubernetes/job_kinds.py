"""What differs between PyTorchJobs and TrainJobs on a cluster: which APIs it serves
(discovery), how a job's pods are selected, and each pod's rank and short name.

A PyTorchJob's pods carry the training operator's labels (``replica-type``/``replica-index``);
a TrainJob's are made by its JobSet: ``jobset.sigs.k8s.io/jobset-name`` = the job,
``replicatedjob-name`` = ``node``, and the Job controller's ``job-completion-index`` = node
rank (what Trainer v2 injects as ``PET_NODE_RANK``). Node 0 is what ``master-0`` means for a
PyTorchJob, node i+1 ``worker-i``, so ``--replica`` reads the same for both. Pure but for
:func:`served_flavors`, which asks the API server.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from corejob.backends.kubernetes.api import KubeApi
from corejob.errors import ConflictError, JobNotFoundError, NotInstalledError, UsageError
from corejob.job import kubeflow as kf
from corejob.job.flavors import FLAVORS, TRAINJOB, Flavor

Pod = dict[str, Any]


def served_flavors(api: KubeApi) -> set[str]:
    """The job flavours whose CRD the cluster serves (API discovery, one call per group)."""
    served = set()
    for flavor in FLAVORS.values():
        try:
            listing = api.call(
                "get",
                f"apis/{flavor.api_version}",
                None,
                lambda f=flavor: api.custom.get_api_resources(
                    f.group, f.version, _preload_content=False, _request_timeout=30
                ),
            )
        except (JobNotFoundError, NotInstalledError):  # 404: the group/version is not served
            continue
        resources = json.loads(listing.data or b"{}").get("resources") or []
        if any(r.get("name") == flavor.plural for r in resources):
            served.add(flavor.name)
    return served


def parse_replica(replica: str) -> tuple[str, int | None]:
    """``master-0``/``worker-3``/``worker`` → (role, index or None); a bad name is a UsageError."""
    role, _, index = replica.partition("-")
    if role not in ("master", "worker") or (index and not index.isdigit()):
        raise UsageError(f"invalid --replica {replica!r}: use master-0 or worker-<N>")
    return role, int(index) if index else None


def trainjob_selector(name: str, replica: str | None) -> str:
    """The TrainJob's trainer pods, or one node's (``master-0`` = node 0, ``worker-i`` = i+1).

    ``worker`` alone (every worker) cannot be said as an equality selector: it selects all
    nodes and :func:`is_worker_pod` filters.
    """
    if not replica:
        return kf.trainjob_pod_selector(name)
    role, index = parse_replica(replica)
    if role == "master":
        return kf.trainjob_pod_selector(name, 0)
    return kf.trainjob_pod_selector(name, None if index is None else index + 1)


def node_rank(pod: Pod) -> int:
    """A TrainJob pod's node rank: the Job completion index (label, else annotation)."""
    metadata = pod.get("metadata") or {}
    for table in (metadata.get("labels") or {}, metadata.get("annotations") or {}):
        value = table.get(kf.JOB_COMPLETION_INDEX_LABEL)
        if value is not None and str(value).isdigit():
            return int(value)
    return 0


def trainjob_pod_rank(pod: Pod) -> tuple[int, str]:
    """(node rank, ``master-0``/``worker-i``) of a TrainJob pod."""
    rank = node_rank(pod)
    return rank, ("master-0" if rank == 0 else f"worker-{rank - 1}")


def is_worker_pod(pod: Pod) -> bool:
    return node_rank(pod) > 0


def flavor_named(name: str | None) -> Flavor | None:
    return FLAVORS.get(name or "")


def is_trainjob(flavor: Flavor) -> bool:
    return flavor is TRAINJOB


# --- the TrainingRuntime a TrainJob brings along (trainJob.runtime.create) ------------------

RUNTIMES = f"{kf.TRAINING_RUNTIME_PLURAL}.{TRAINJOB.group}"


def _runtimes(api: KubeApi, method: str, *args: Any, **kwargs: Any) -> Any:
    function = getattr(api.custom, method)
    return function(TRAINJOB.group, TRAINJOB.version, api.namespace,
                    kf.TRAINING_RUNTIME_PLURAL, *args, _request_timeout=30, **kwargs)  # fmt: skip


def create_runtime(api: KubeApi, runtime: dict[str, Any]) -> None:
    """Create the job's TrainingRuntime before the job (Trainer's webhook requires it); one
    left from an earlier submit of the same job (same name: same config) is reused."""
    name = runtime["metadata"]["name"]
    with contextlib.suppress(ConflictError):
        api.call(
            "create",
            RUNTIMES,
            name,
            lambda: _runtimes(api, "create_namespaced_custom_object", runtime),
        )


def adopt_runtime(api: KubeApi, runtime_name: str, job: dict[str, Any]) -> None:
    """Make the TrainJob the runtime's owner: deleting the job garbage-collects it."""
    owner = {
        "apiVersion": TRAINJOB.api_version,
        "kind": TRAINJOB.kind,
        "name": job["metadata"]["name"],
        "uid": job["metadata"].get("uid", ""),
        "blockOwnerDeletion": False,
    }
    if not owner["uid"]:
        return
    patch = {"metadata": {"ownerReferences": [owner]}}
    api.call(
        "patch",
        RUNTIMES,
        runtime_name,
        lambda: _runtimes(api, "patch_namespaced_custom_object", runtime_name, patch),
    )


def delete_runtime(api: KubeApi, runtime_name: str) -> None:
    """Delete it at once too: clusters without a garbage collector (or a job created before
    adoption) would otherwise keep it."""
    with contextlib.suppress(JobNotFoundError):
        api.call(
            "delete",
            RUNTIMES,
            runtime_name,
            lambda: _runtimes(api, "delete_namespaced_custom_object", runtime_name),
        )
