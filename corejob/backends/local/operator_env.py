"""The environment a replica's container sees: its own ``env`` plus what the operator injects.

Mirrors the Kubeflow training operator v1.9 (``pkg/controller.v1/pytorch/envvar.go`` and
``master.go``): every container gets ``PYTHONUNBUFFERED=1``; when the job has a Master,
``MASTER_PORT``/``PET_MASTER_PORT`` (the master's ``pytorchjob-port``),
``MASTER_ADDR``/``PET_MASTER_ADDR`` (the master pod's name, resolved by its headless
Service), ``WORLD_SIZE`` (replicas x nprocPerNode), ``RANK`` and ``PET_NODE_RANK`` (master 0,
worker i → i + 1); ``PET_NPROC_PER_NODE`` (default ``auto``) and ``PET_NNODES`` (replicas).
The operator appends its variables after the container's, so they win on a name clash.
A TrainJob (Kubeflow Trainer v2, ``pkg/runtime/framework/plugins/torch``) gets only
``PET_NNODES``, ``PET_NPROC_PER_NODE``, ``PET_NODE_RANK`` (the Job completion index),
``PET_MASTER_ADDR`` and ``PET_MASTER_PORT``: :func:`trainer_v2_env`.

Container env entries are resolved here as the kubelet would (``value`` with ``$(VAR)``
references, ``fieldRef``); ``secretKeyRef``/``configMapKeyRef`` have no local store, so
they take the value of the same-named variable of the submitting shell, or fail with a
one-line message saying what to export. Pure: no I/O, the shell passes its environ in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_PORT = 23456
PORT_NAME = "pytorchjob-port"
DEFAULT_NPROC_PER_NODE = "auto"

_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_FIELD_KEY = re.compile(r"^metadata\.(labels|annotations)\['([^']+)'\]$")


class JobSpecError(ValueError):
    """The job object cannot be run locally; ``str()`` is one line naming field and value."""


@dataclass(frozen=True)
class PodIdentity:
    """What ``fieldRef`` can refer to for one replica's pod."""

    name: str
    namespace: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    pod_ip: str
    node_name: str


def expand_references(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: known names replaced, unknown kept, ``$$`` → ``$``."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _REFERENCE.sub(replace, text)


def nproc_per_node(job: dict[str, Any]) -> tuple[str, int]:
    """(``PET_NPROC_PER_NODE`` value, processes per pod for WORLD_SIZE; ``auto`` counts as 1)."""
    spec = job.get("spec", {})
    raw = str(
        (spec.get("trainer") or {}).get("numProcPerNode")
        or spec.get("nprocPerNode")
        or DEFAULT_NPROC_PER_NODE
    )
    return raw, int(raw) if raw.isdigit() and int(raw) > 0 else 1


def operator_env(
    *,
    rank: int,
    total_replicas: int,
    nproc: tuple[str, int],
    master_addr: str,
    master_port: int,
) -> list[tuple[str, str]]:
    """The variables the operator appends to a replica's container, in the operator's order."""
    port = str(master_port)
    return [
        ("PYTHONUNBUFFERED", "1"),
        ("MASTER_PORT", port),
        ("PET_MASTER_PORT", port),
        ("MASTER_ADDR", master_addr),
        ("PET_MASTER_ADDR", master_addr),
        ("WORLD_SIZE", str(total_replicas * nproc[1])),
        ("RANK", str(rank)),
        ("PET_NODE_RANK", str(rank)),
        ("PET_NPROC_PER_NODE", nproc[0]),
        ("PET_NNODES", str(total_replicas)),
    ]


def trainer_v2_env(
    *, node_rank: int, nodes: int, nproc: str, master_addr: str, master_port: int
) -> list[tuple[str, str]]:
    """The variables Trainer v2's torch plugin upserts into a TrainJob node's container.

    ``PYTHONUNBUFFERED=1`` is the image's own (image/Dockerfile), added here because a local
    process does not inherit it; nothing else: no ``RANK``/``WORLD_SIZE``/``MASTER_*``.
    """
    return [
        ("PYTHONUNBUFFERED", "1"),
        ("PET_NNODES", str(nodes)),
        ("PET_NPROC_PER_NODE", nproc),
        ("PET_NODE_RANK", str(node_rank)),
        ("PET_MASTER_ADDR", master_addr),
        ("PET_MASTER_PORT", str(master_port)),
    ]


def container_env(
    entries: list[dict[str, Any]] | None,
    pod: PodIdentity,
    host_environ: Mapping[str, str],
    where: str,
) -> list[tuple[str, str]]:
    """Resolve a container's ``env`` list in order (later ``$(VAR)`` see earlier names)."""
    resolved: dict[str, str] = {}
    ordered: list[tuple[str, str]] = []
    for entry in entries or []:
        name = str(entry.get("name", ""))
        if "valueFrom" in entry:
            value = _value_from(name, entry["valueFrom"] or {}, pod, host_environ, where)
            if value is None:
                continue
        else:
            value = expand_references(str(entry.get("value", "")), resolved)
        resolved[name] = value
        ordered.append((name, value))
    return ordered


def _value_from(
    name: str,
    source: dict[str, Any],
    pod: PodIdentity,
    host_environ: Mapping[str, str],
    where: str,
) -> str | None:
    if "fieldRef" in source:
        return _field_value(str(source["fieldRef"].get("fieldPath", "")), pod, name, where)
    for kind in ("secretKeyRef", "configMapKeyRef"):
        if kind in source:
            ref = source[kind] or {}
            if name in host_environ:
                return host_environ[name]
            if ref.get("optional"):
                return None
            store = "secret" if kind == "secretKeyRef" else "configMap"
            raise JobSpecError(
                f"{where}: env {name} comes from {store} {ref.get('name')!r} key "
                f"{ref.get('key')!r}, which a local run cannot read; export {name} in your shell"
            )
    raise JobSpecError(
        f"{where}: env {name} uses valueFrom {sorted(source)} which a local run cannot "
        "resolve; set a plain value instead"
    )


def _field_value(path: str, pod: PodIdentity, name: str, where: str) -> str:
    simple = {
        "metadata.name": pod.name,
        "metadata.namespace": pod.namespace,
        "spec.nodeName": pod.node_name,
        "status.podIP": pod.pod_ip,
        "status.hostIP": pod.pod_ip,
        "spec.serviceAccountName": "default",
    }
    if path in simple:
        return simple[path]
    match = _FIELD_KEY.match(path)
    if match:
        table = pod.labels if match.group(1) == "labels" else pod.annotations
        return table.get(match.group(2), "")
    raise JobSpecError(f"{where}: env {name} fieldRef {path!r} is not supported locally")


def merge_env(*layers: list[tuple[str, str]]) -> dict[str, str]:
    """Later entries win, as the kubelet does with duplicate names in one env list."""
    merged: dict[str, str] = {}
    for layer in layers:
        for name, value in layer:
            merged[name] = value
    return merged
