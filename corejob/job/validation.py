"""Check a PyTorchJob the way a Training Operator v1.9 cluster would, without a cluster.

Two layers, both pure (object in, list of problems out):

- the PyTorchJob CRD's OpenAPI schema, made *strict*: the API server silently prunes
  unknown fields, which turns a typo (``restartpolicy``) into a job that quietly ignores
  it, so every object schema that lists its properties here rejects any other key;
- the rules the operator's admission webhook enforces (they are not in the CRD), plus
  the project's own: exactly one Master and a job name short enough for pod names.

The CRD is data (Apache-2.0, Kubeflow): ``$COREJOB_CRD_PATH``, else the shared copy next
to the repository, else the copy vendored under ``manifests/crds/``.
"""

from __future__ import annotations

import copy
import functools
import os
import re
from pathlib import Path
from typing import Any

import yaml

from corejob.job.kubeflow import (
    CONTAINER_NAME,
    DNS1035_LABEL,
    JOB_API_VERSION,
    JOB_KIND,
    MASTER,
    MAX_JOB_NAME_LENGTH,
    REPLICA_TYPES,
    TRAINING_RUNTIME_KIND,
    TRAINJOB_KIND,
)

CRD_PATH_ENV = "COREJOB_CRD_PATH"
CRD_FILE = "kubeflow.org_pytorchjobs.yaml"
RESTART_POLICIES = ("Always", "OnFailure", "Never", "ExitCode")
CLEAN_POD_POLICIES = ("None", "Running", "All")
MANAGED_BY = ("kubeflow.org/training-operator", "kueue.x-k8s.io/multikueue")

_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)

# What a submitted object's metadata may carry; the CRD leaves metadata untyped.
_OBJECT_META_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "name": {"type": "string"},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def crd_path(crd_file: str = CRD_FILE) -> Path:
    """Where a CRD is read from (see the module docstring; ``$COREJOB_CRD_PATH`` names the
    PyTorchJob CRD only)."""
    override = os.environ.get(CRD_PATH_ENV)
    if override and crd_file == CRD_FILE:
        return Path(override)
    repo = Path(__file__).resolve().parents[2]
    shared = repo.parent / "shared" / "crds" / crd_file
    return shared if shared.is_file() else repo / "manifests" / "crds" / crd_file


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of an OpenAPI schema where objects with listed properties forbid others.

    Objects marked ``x-kubernetes-preserve-unknown-fields`` or with their own
    ``additionalProperties`` (maps) keep accepting arbitrary keys, as the API server does.
    """
    result = copy.deepcopy(schema)
    pending = [result]
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            pending.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        if (
            "properties" in node
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False
        pending.extend(value for value in node.values() if isinstance(value, dict | list))
    return result


@functools.lru_cache(maxsize=8)
def _validator(path: Path, api_version: str = JOB_API_VERSION, kind: str = JOB_KIND) -> Any:
    """A JSON-schema validator for a CRD's strict schema of ``api_version`` (built once)."""
    import jsonschema

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open(encoding="utf-8") as handle:
        crd = yaml.load(handle, Loader=loader)
    version = api_version.partition("/")[2]
    versions = [v for v in crd["spec"]["versions"] if v["name"] == version]
    schema = strict_schema(versions[0]["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = _OBJECT_META_SCHEMA
    schema["required"] = ["apiVersion", "kind", "metadata", "spec"]
    schema["properties"]["apiVersion"]["enum"] = [api_version]
    schema["properties"]["kind"]["enum"] = [kind]
    return jsonschema.Draft7Validator(schema)


def schema_problems(
    job: dict[str, Any],
    path: Path | None = None,
    api_version: str = JOB_API_VERSION,
    kind: str = JOB_KIND,
) -> list[str]:
    """Violations of the strict CRD schema, as ``<field path>: <message>`` lines."""
    crd = path or crd_path()
    if not crd.is_file():
        return [f"{kind} CRD not found at {crd}: set {CRD_PATH_ENV}"]
    problems = []
    validator = _validator(crd, api_version, kind)
    for error in sorted(validator.iter_errors(job), key=lambda e: list(e.absolute_path)):
        where = ".".join(str(part) for part in error.absolute_path) or "<object>"
        problems.append(f"{where}: {error.message}")
    return problems


def _label_problems(where: str, labels: Any) -> list[str]:
    """Label keys and values the API server would reject."""
    problems = []
    for key, value in (labels or {}).items():
        prefix, _, name = str(key).rpartition("/")
        if (prefix and not _DNS1123_SUBDOMAIN.match(prefix)) or not (
            len(name) <= 63 and _LABEL_NAME.match(name)
        ):
            problems.append(f"{where}: invalid label key {key!r}")
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            problems.append(f"{where}: invalid value {value!r} of label {key!r}")
    return problems


def _name_problems(name: Any) -> list[str]:
    if not isinstance(name, str) or not DNS1035_LABEL.match(name):
        return [
            f"metadata.name: {name!r} is not a DNS-1035 label (lowercase letters, digits"
            " and '-', starting with a letter, ending with a letter or digit)"
        ]
    if len(name) > MAX_JOB_NAME_LENGTH:
        return [
            f"metadata.name: {name!r} has {len(name)} characters, at most"
            f" {MAX_JOB_NAME_LENGTH} (pod names append -worker-<i>)"
        ]
    return []


def _replica_problems(role: str, replica: Any) -> list[str]:
    """One replica spec: container ``pytorch`` with an image, replicas, restartPolicy."""
    where = f"spec.pytorchReplicaSpecs[{role}]"
    if not isinstance(replica, dict):
        return [f"{where}: must be an object"]
    problems = []
    if role not in REPLICA_TYPES:
        problems.append(f"{where}: unsupported replica type, use one of {list(REPLICA_TYPES)}")
    replicas = replica.get("replicas")
    if role == MASTER and replicas != 1:
        problems.append(f"{where}.replicas: must be 1, got {replicas!r}")
    elif (
        role == "Worker"
        and replicas is not None
        and (not isinstance(replicas, int) or replicas < 1)
    ):
        problems.append(f"{where}.replicas: must be at least 1, got {replicas!r}")
    policy = replica.get("restartPolicy")
    if policy is not None and policy not in RESTART_POLICIES:
        problems.append(f"{where}.restartPolicy: {policy!r} is not one of {list(RESTART_POLICIES)}")
    template = replica.get("template") or {}
    containers = (template.get("spec") or {}).get("containers") or []
    if not containers:
        problems.append(f"{where}.template.spec.containers: must be specified")
    for index, container in enumerate(containers):
        if not (container or {}).get("image"):
            problems.append(f"{where}.template.spec.containers[{index}].image: must be set")
    if containers and not any((c or {}).get("name") == CONTAINER_NAME for c in containers):
        problems.append(
            f"{where}.template.spec.containers: needs a container named {CONTAINER_NAME!r}"
        )
    labels = (template.get("metadata") or {}).get("labels")
    problems += _label_problems(f"{where}.template.metadata.labels", labels)
    return problems


def webhook_problems(job: dict[str, Any]) -> list[str]:
    """The operator webhook's rules (release-1.9) plus corejob's: one Master, name ≤ 50."""
    metadata = job.get("metadata") or {}
    spec = job.get("spec") or {}
    problems = _name_problems(metadata.get("name"))
    problems += _label_problems("metadata.labels", metadata.get("labels"))
    replicas = spec.get("pytorchReplicaSpecs")
    if not isinstance(replicas, dict) or not replicas:
        return [*problems, "spec.pytorchReplicaSpecs: must be specified"]
    if MASTER not in replicas:
        problems.append("spec.pytorchReplicaSpecs: needs exactly one Master replica spec")
    for role, replica in replicas.items():
        problems += _replica_problems(role, replica)
    elastic = spec.get("elasticPolicy")
    if elastic is not None:
        if "Worker" not in replicas:
            problems.append("spec.pytorchReplicaSpecs[Worker]: required by elasticPolicy")
        if elastic.get("nProcPerNode") is not None and spec.get("nprocPerNode") is not None:
            problems.append(
                "spec.elasticPolicy.nProcPerNode: must not be used with spec.nprocPerNode"
            )
    run_policy = spec.get("runPolicy") or {}
    clean = run_policy.get("cleanPodPolicy")
    if clean is not None and clean not in CLEAN_POD_POLICIES:
        problems.append(
            f"spec.runPolicy.cleanPodPolicy: {clean!r} is not one of {list(CLEAN_POD_POLICIES)}"
        )
    manager = run_policy.get("managedBy")
    if manager is not None and manager not in MANAGED_BY:
        problems.append(f"spec.runPolicy.managedBy: {manager!r} is not one of {list(MANAGED_BY)}")
    return problems


def validate_job(job: dict[str, Any]) -> list[str]:
    """Every reason a Training Operator v1.9 cluster would reject or mangle ``job``.

    An empty list means the job is accepted as is: it matches the CRD schema with no
    unknown fields and passes the operator's admission rules.
    """
    if not isinstance(job, dict):
        return [f"<object>: expected a PyTorchJob mapping, got {type(job).__name__}"]
    if job.get("kind") in (TRAINJOB_KIND, TRAINING_RUNTIME_KIND):
        from corejob.job.flavors.trainjob_rules import validate_trainer_object

        return validate_trainer_object(job)
    return schema_problems(job) + webhook_problems(job)
