"""Either flavour of job as Master/Worker replica specs: the view the local backends run.

A PyTorchJob already is that (``spec.pytorchReplicaSpecs``). A TrainJob names its nodes
``node-0 … node-N`` and splits the pod between ``spec.trainer`` (image, command, args, env,
resources, node count) and the chart's runtime patch (volumes, mounts, security context,
placement, pod labels); this module joins them into one pod template per replica so the
local supervisor, the container runner and ``status`` read both the same way. Node 0 is
the "Master" (rank 0), node i+1 "Worker" i. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from corejob.job import kubeflow as kf

Spec = dict[str, Any]


def replica_specs(job: dict[str, Any]) -> dict[str, Spec]:
    """``{"Master": spec, "Worker": spec}`` (Worker only with more than one node/replica)."""
    if job.get("kind") != kf.TRAINJOB_KIND:
        return dict(job.get("spec", {}).get("pytorchReplicaSpecs") or {})
    spec = job.get("spec") or {}
    nodes = int((spec.get("trainer") or {}).get("numNodes") or 1)
    template = trainjob_pod_template(job)
    specs = {kf.MASTER: {"replicas": 1, "restartPolicy": "Never", "template": template}}
    if nodes > 1:
        specs[kf.WORKER] = {"replicas": nodes - 1, "restartPolicy": "Never", "template": template}
    return specs


def master_pod_spec(job: dict[str, Any]) -> Spec:
    """The rank-0 pod's spec (``{}`` when the job has none)."""
    return (replica_specs(job).get(kf.MASTER) or {}).get("template", {}).get("spec") or {}


def node_patch(job: dict[str, Any]) -> Spec:
    """The pod template the runtime patches give the trainer's ``node`` job (later wins)."""
    merged: Spec = {"metadata": {}, "spec": {}}
    for patch in job.get("spec", {}).get("runtimePatches") or []:
        runtime = (patch.get("trainingRuntimeSpec") or {}).get("template") or {}
        for replicated in (runtime.get("spec") or {}).get("replicatedJobs") or []:
            if replicated.get("name") != kf.TRAINER_REPLICATED_JOB:
                continue
            pod = ((replicated.get("template") or {}).get("spec") or {}).get("template") or {}
            merged["metadata"].update(pod.get("metadata") or {})
            merged["spec"].update(pod.get("spec") or {})
    return merged


def trainjob_pod_template(job: dict[str, Any]) -> Spec:
    """The trainer pod a TrainJob asks for: ``spec.trainer`` inside the patched template."""
    trainer = job.get("spec", {}).get("trainer") or {}
    patch = node_patch(job)
    pod_spec = dict(patch["spec"])
    patched = next(
        (
            c
            for c in pod_spec.pop("containers", None) or []
            if c.get("name") == kf.TRAINJOB_CONTAINER_NAME
        ),
        {},
    )
    container: Spec = {"name": kf.TRAINJOB_CONTAINER_NAME, "image": trainer.get("image", "")}
    for field in ("command", "args", "env"):
        if trainer.get(field):
            container[field] = list(trainer[field])
    if trainer.get("resourcesPerNode"):
        container["resources"] = trainer["resourcesPerNode"]
    for field in ("securityContext", "volumeMounts"):
        if patched.get(field):
            container[field] = patched[field]
    container["ports"] = [{"containerPort": kf.TRAINJOB_MASTER_PORT, "protocol": "TCP"}]
    return {"metadata": patch["metadata"], "spec": {**pod_spec, "containers": [container]}}


def trainer_containers_of(job: dict[str, Any]) -> list[tuple[str, Spec]]:
    """(role, trainer container) of every replica spec of either flavour."""
    name = kf.TRAINJOB_CONTAINER_NAME if job.get("kind") == kf.TRAINJOB_KIND else kf.CONTAINER_NAME
    return [
        (role, container)
        for role, spec in replica_specs(job).items()
        for container in spec.get("template", {}).get("spec", {}).get("containers") or []
        if container.get("name") == name
    ]
