"""Check a TrainJob (and a chart-rendered TrainingRuntime) as a Trainer v2.3 cluster would.

Same two layers as :mod:`corejob.job.validation` for PyTorchJobs: the CRD's schema made
strict (unknown fields are errors, not silently pruned), then the rules the API server's
CEL validations and Trainer's admission webhook enforce on create: the name (DNS-1035;
corejob's own limit of 50 leaves room for ``-node-<i>-<j>`` pod hostnames), no reserved
``PET_*`` variables in ``spec.trainer.env``, one ML policy per runtime, ``managedBy``.
"""

from __future__ import annotations

import json
from typing import Any

from corejob.job import kubeflow as kf
from corejob.job.validation import (
    _label_problems,
    _name_problems,
    crd_path,
    schema_problems,
)

CRD_FILES = {
    kf.TRAINJOB_KIND: "trainer.kubeflow.org_trainjobs.yaml",
    kf.TRAINING_RUNTIME_KIND: "trainer.kubeflow.org_trainingruntimes.yaml",
}
MANAGED_BY = ("trainer.kubeflow.org/trainjob-controller", "kueue.x-k8s.io/multikueue")
ML_POLICIES = ("torch", "mpi", "jax", "xgboost", "flux")


def trainjob_problems(job: dict[str, Any]) -> list[str]:
    """CEL and webhook rules of a TrainJob that apply when it is created."""
    spec = job.get("spec") or {}
    problems = []
    manager = spec.get("managedBy")
    if manager is not None and manager not in MANAGED_BY:
        problems.append(f"spec.managedBy: {manager!r} is not one of {list(MANAGED_BY)}")
    trainer = spec.get("trainer") or {}
    reserved = sorted({e.get("name") for e in trainer.get("env") or []} & set(kf.PET_RESERVED_ENV))
    if reserved:
        problems.append(
            f"spec.trainer.env: must not set {reserved}: the Trainer's torch plugin injects them"
        )
    for index, patch in enumerate(spec.get("runtimePatches") or []):
        template = (patch.get("trainingRuntimeSpec") or {}).get("template") or {}
        for replicated in (template.get("spec") or {}).get("replicatedJobs") or []:
            pod = ((replicated.get("template") or {}).get("spec") or {}).get("template") or {}
            where = f"spec.runtimePatches[{index}]...replicatedJobs[{replicated.get('name')}]"
            labels = (pod.get("metadata") or {}).get("labels")
            problems += _label_problems(f"{where}.template.metadata.labels", labels)
            for container in (pod.get("spec") or {}).get("containers") or []:
                if container.get("env") and container.get("name") == kf.TRAINJOB_CONTAINER_NAME:
                    problems.append(
                        f"{where}: env of container {kf.TRAINJOB_CONTAINER_NAME!r} may only be "
                        "set in spec.trainer.env"
                    )
    return problems


def runtime_problems(runtime: dict[str, Any]) -> list[str]:
    """Rules of a TrainingRuntime: one ML policy, a trainer ``node`` job with container ``node``."""
    spec = runtime.get("spec") or {}
    policies = [p for p in ML_POLICIES if p in (spec.get("mlPolicy") or {})]
    problems = []
    if len(policies) > 1:
        problems.append(
            f"spec.mlPolicy: only one of {list(ML_POLICIES)} may be set, got {policies}"
        )
    jobs = ((spec.get("template") or {}).get("spec") or {}).get("replicatedJobs") or []
    nodes = [j for j in jobs if j.get("name") == kf.TRAINER_REPLICATED_JOB]
    if not nodes:
        problems.append(
            f"spec.template.spec.replicatedJobs: needs one named {kf.TRAINER_REPLICATED_JOB!r}"
        )
    for job in nodes:
        pod = ((job.get("template") or {}).get("spec") or {}).get("template") or {}
        names = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
        if kf.TRAINJOB_CONTAINER_NAME not in names:
            problems.append(
                "spec.template.spec.replicatedJobs[node].template.spec.template.spec.containers: "
                f"needs a container named {kf.TRAINJOB_CONTAINER_NAME!r}"
            )
    return problems


def validate_trainer_object(obj: dict[str, Any]) -> list[str]:
    """Every reason a Trainer v2.3 cluster would reject or mangle ``obj`` (TrainJob or
    TrainingRuntime); empty when it is accepted as is."""
    kind = obj.get("kind", "")
    problems = schema_problems(obj, crd_path(CRD_FILES[kind]), kf.TRAINJOB_API_VERSION, kind)
    metadata = obj.get("metadata") or {}
    problems += _name_problems(metadata.get("name"))
    problems += _label_problems("metadata.labels", metadata.get("labels"))
    if kind == kf.TRAINJOB_KIND:
        return problems + trainjob_problems(obj) + carried_runtime_problems(obj)
    return problems + runtime_problems(obj)


def carried_runtime(job: dict[str, Any]) -> dict[str, Any] | None:
    """The TrainingRuntime a TrainJob carries (``corejob.dev/training-runtime``), if any."""
    from corejob.job.render import RUNTIME_ANNOTATION

    text = ((job.get("metadata") or {}).get("annotations") or {}).get(RUNTIME_ANNOTATION)
    if text is None:
        return None
    try:
        runtime = json.loads(text)
    except ValueError:
        return {}
    return runtime if isinstance(runtime, dict) else {}


def carried_runtime_problems(job: dict[str, Any]) -> list[str]:
    """The carried runtime must be a valid TrainingRuntime and the one the job references."""
    runtime = carried_runtime(job)
    if runtime is None:
        return []
    where = "metadata.annotations[corejob.dev/training-runtime]"
    if runtime.get("kind") != kf.TRAINING_RUNTIME_KIND:
        return [f"{where}: must be a TrainingRuntime object in JSON"]
    problems = [f"{where}: {p}" for p in validate_trainer_object(runtime)]
    ref = (job.get("spec") or {}).get("runtimeRef") or {}
    name = (runtime.get("metadata") or {}).get("name")
    if (ref.get("kind"), ref.get("name")) != (kf.TRAINING_RUNTIME_KIND, name):
        problems.append(f"spec.runtimeRef: must name the carried TrainingRuntime {name!r}")
    return problems
