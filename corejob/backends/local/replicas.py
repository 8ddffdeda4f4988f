"""Job object → one launch plan per replica (pure; no processes, no files).

A PyTorchJob's replica specs are used as they are; a TrainJob's nodes are first joined into
the same Master/Worker view (:mod:`corejob.job.flavors.replicas`) and get Trainer v2's PET_*
variables instead of the training operator's.

A :class:`ReplicaPlan` is what the operator would turn into a pod: which replica it is
(role, index, rank, pod name), the ``pytorch`` container's command/args/env with the
operator's variables injected, its volume mounts and its restart policy. The local
runner turns a plan into a :class:`ReplicaProcessSpec` (argv + env with mount paths
rewritten to host directories); the container runner turns it into an engine command.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corejob.backends.core_ledger import threads_per_process
from corejob.backends.local.operator_env import (
    DEFAULT_PORT,
    PORT_NAME,
    JobSpecError,
    PodIdentity,
    container_env,
    expand_references,
    merge_env,
    nproc_per_node,
    operator_env,
    trainer_v2_env,
)
from corejob.backends.local.store import CONFIG_MAPS_DIR
from corejob.job.flavors.replicas import replica_specs
from corejob.job.kubeflow import (
    CONTAINER_NAME,
    JOB_NAME_LABEL,
    JOB_ROLE_LABEL,
    MASTER,
    REPLICA_INDEX_LABEL,
    REPLICA_TYPE_LABEL,
    REPLICA_TYPES,
    TRAINJOB_CONTAINER_NAME,
    TRAINJOB_KIND,
    TRAINJOB_MASTER_PORT,
)

ROLE_ORDER = REPLICA_TYPES  # the operator starts (and ranks) the Master first
NAMESPACE = "local"
# The trainer image's ENTRYPOINT (`corejob-train`), as a local process of this interpreter.
LOCAL_ENTRYPOINT: tuple[str, ...] = ("-m", "trainer")


@dataclass(frozen=True)
class Volume:
    """Where a pod volume's data lives: ``kind`` emptyDir | persistentVolumeClaim | hostPath
    | configMap (``ref``: the claim, host path or ConfigMap name)."""

    name: str
    kind: str
    ref: str = ""
    medium: str = ""
    items: tuple[tuple[str, str], ...] = ()  # configMap: (key, path) pairs; () = every key


@dataclass(frozen=True)
class Mount:
    volume: Volume
    mount_path: str
    sub_path: str = ""
    read_only: bool = False


@dataclass(frozen=True)
class ReplicaPlan:
    """One replica of the job, as the operator would create its pod."""

    role: str
    index: int
    rank: int
    pod_name: str
    restart_policy: str
    command: tuple[str, ...] | None
    args: tuple[str, ...]
    env: Mapping[str, str]
    mounts: tuple[Mount, ...]
    working_dir: str | None
    image: str

    @property
    def replica_id(self) -> str:
        """``master-0``, ``worker-1``: the name of its log file and status entry."""
        return f"{self.role.lower()}-{self.index}"


@dataclass(frozen=True)
class ReplicaProcessSpec:
    """A replica as a local process: exactly what the supervisor passes to ``Popen``."""

    replica_id: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: str | None


def replica_specs_of(job: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(role, replica spec) pairs, Master first; fails on what the operator would reject."""
    if job.get("kind") == TRAINJOB_KIND:
        if job.get("spec", {}).get("suspend"):
            raise JobSpecError("spec.suspend: suspended jobs cannot run locally; unset it")
        specs = replica_specs(job)
        return [(role, specs[role]) for role in ROLE_ORDER if role in specs]
    specs = job.get("spec", {}).get("pytorchReplicaSpecs") or {}
    unknown = sorted(set(specs) - set(ROLE_ORDER))
    if unknown:
        raise JobSpecError(f"spec.pytorchReplicaSpecs: unsupported replica type {unknown[0]!r}")
    if MASTER not in specs:
        raise JobSpecError("spec.pytorchReplicaSpecs: a Master replica is required")
    if (job.get("spec", {}).get("runPolicy") or {}).get("suspend"):
        raise JobSpecError("spec.runPolicy.suspend: suspended jobs cannot run locally; unset it")
    if job.get("spec", {}).get("elasticPolicy"):
        raise JobSpecError("spec.elasticPolicy: elastic jobs are not supported locally")
    return [(role, specs[role]) for role in ROLE_ORDER if role in specs]


def replica_count(spec: dict[str, Any]) -> int:
    count = spec.get("replicas", 1)
    return 1 if count is None else int(count)


def total_processes(job: dict[str, Any]) -> int:
    """Processes the whole job starts (pods x nprocPerNode): the divisor for OMP threads."""
    replicas = sum(replica_count(spec) for _, spec in replica_specs_of(job))
    return replicas * nproc_per_node(job)[1]


def master_container_port(job: dict[str, Any]) -> int:
    """The Master's ``pytorchjob-port`` (the operator's default 23456 when not declared);
    a TrainJob's is Trainer v2's fixed trainer port."""
    if job.get("kind") == TRAINJOB_KIND:
        return TRAINJOB_MASTER_PORT
    master = job["spec"]["pytorchReplicaSpecs"][MASTER]
    for port in _pytorch_container(master, MASTER).get("ports") or []:
        if port.get("name") == PORT_NAME:
            return int(port["containerPort"])
    return DEFAULT_PORT


def replica_plans(
    job: dict[str, Any],
    *,
    master_addr: str,
    master_port: int,
    cpu_count: int,
    host_environ: Mapping[str, str],
) -> list[ReplicaPlan]:
    """Replicas of ``job`` with the operator's env (``master_addr``: how peers reach rank 0)."""
    roles = replica_specs_of(job)
    total = sum(replica_count(spec) for _, spec in roles)
    nproc = nproc_per_node(job)
    # All replicas share this machine, so the pods' CPU requests do not apply here: the job's
    # processes split the cores the core ledger gives it (all of them; it runs alone there).
    threads = str(threads_per_process(total * nproc[1], cpu_count))
    plans = []
    for role, spec in roles:
        for index in range(replica_count(spec)):
            rank = index if role == MASTER else index + 1
            if job.get("kind") == TRAINJOB_KIND:
                injected = trainer_v2_env(
                    node_rank=rank,
                    nodes=total,
                    nproc=nproc[0],
                    master_addr=master_addr,
                    master_port=master_port,
                )
            else:
                injected = operator_env(
                    rank=rank,
                    total_replicas=total,
                    nproc=nproc,
                    master_addr=master_addr,
                    master_port=master_port,
                )
            injected.append(("OMP_NUM_THREADS", threads))
            pod = _pod_identity(job["metadata"]["name"], role, index, spec)
            plans.append(_plan(role, index, rank, spec, pod, injected, host_environ))
    return plans


def _plan(
    role: str,
    index: int,
    rank: int,
    spec: dict[str, Any],
    pod: PodIdentity,
    injected: list[tuple[str, str]],
    host_environ: Mapping[str, str],
) -> ReplicaPlan:
    where = f"spec.pytorchReplicaSpecs.{role}"
    container = _pytorch_container(spec, role)
    if container.get("name") == TRAINJOB_CONTAINER_NAME:
        where = "spec.trainer"
    env = merge_env(container_env(container.get("env"), pod, host_environ, where), injected)
    command = container.get("command")
    return ReplicaPlan(
        role=role,
        index=index,
        rank=rank,
        pod_name=pod.name,
        restart_policy=str(spec.get("restartPolicy") or "OnFailure"),
        command=tuple(expand_references(str(c), env) for c in command) if command else None,
        args=tuple(expand_references(str(a), env) for a in container.get("args") or []),
        env=env,
        mounts=_mounts(spec, container, where),
        working_dir=container.get("workingDir"),
        image=str(container.get("image", "")),
    )


def _pytorch_container(spec: dict[str, Any], role: str) -> dict[str, Any]:
    for container in spec.get("template", {}).get("spec", {}).get("containers") or []:
        if container.get("name") in (CONTAINER_NAME, TRAINJOB_CONTAINER_NAME):
            return container
    raise JobSpecError(
        f"spec.pytorchReplicaSpecs.{role}.template.spec.containers: "
        f"no container named {CONTAINER_NAME!r}"
    )


def _pod_identity(job_name: str, role: str, index: int, spec: dict[str, Any]) -> PodIdentity:
    metadata = spec.get("template", {}).get("metadata") or {}
    labels = dict(metadata.get("labels") or {})
    labels.update(
        {
            JOB_NAME_LABEL: job_name,
            REPLICA_TYPE_LABEL: role.lower(),
            REPLICA_INDEX_LABEL: str(index),
        }
    )
    if role == MASTER:
        labels[JOB_ROLE_LABEL] = "master"
    return PodIdentity(
        name=f"{job_name}-{role.lower()}-{index}",
        namespace=NAMESPACE,
        labels=labels,
        annotations=dict(metadata.get("annotations") or {}),
        pod_ip="127.0.0.1",
        node_name="localhost",
    )


def _mounts(spec: dict[str, Any], container: dict[str, Any], where: str) -> tuple[Mount, ...]:
    volumes = {}
    for volume in spec.get("template", {}).get("spec", {}).get("volumes") or []:
        volumes[volume["name"]] = _volume(volume, where)
    mounts = []
    for mount in container.get("volumeMounts") or []:
        name = mount.get("name")
        if name not in volumes:
            raise JobSpecError(f"{where}: volumeMount {name!r} names no volume of the pod")
        mounts.append(
            Mount(
                volume=volumes[name],
                mount_path=str(mount["mountPath"]).rstrip("/") or "/",
                sub_path=str(mount.get("subPath") or ""),
                read_only=bool(mount.get("readOnly", False)),
            )
        )
    return tuple(mounts)


def _volume(volume: dict[str, Any], where: str) -> Volume:
    name = volume["name"]
    if "emptyDir" in volume:
        return Volume(name, "emptyDir", medium=str((volume["emptyDir"] or {}).get("medium", "")))
    if "persistentVolumeClaim" in volume:
        return Volume(
            name, "persistentVolumeClaim", ref=volume["persistentVolumeClaim"]["claimName"]
        )
    if "hostPath" in volume:
        return Volume(name, "hostPath", ref=volume["hostPath"]["path"])
    if "configMap" in volume:
        source = volume["configMap"]
        items = tuple((item["key"], item["path"]) for item in source.get("items") or [])
        return Volume(name, "configMap", ref=source["name"], items=items)
    kinds = sorted(set(volume) - {"name"})
    raise JobSpecError(f"{where}: volume {name!r} of type {kinds} is not supported locally")


def config_map_files(job: dict[str, Any], config_map: dict[str, Any]) -> dict[str, str]:
    """The files a pod sees in a volume of ``config_map``: path → text (its ``items``
    place keys at paths, e.g. a dataset's session files in a subdirectory)."""
    data = config_map.get("data") or {}
    name = config_map["metadata"]["name"]
    for role, spec in replica_specs_of(job):
        for volume in spec.get("template", {}).get("spec", {}).get("volumes") or []:
            mapped = _volume(volume, f"spec.pytorchReplicaSpecs.{role}")
            if mapped.kind == "configMap" and mapped.ref == name and mapped.items:
                return {path: data[key] for key, path in mapped.items if key in data}
    return dict(data)


def volume_host_dir(volume: Volume, job_dir: Path, claims_dir: Path) -> Path | None:
    """Host directory backing ``volume``; None for a memory ``/dev/shm`` (the host's is used).

    emptyDir volumes live in the job's directory (kept across replica restarts, so a
    restarted replica finds ``last.ckpt``); a claim is shared by every job that names it,
    like a PersistentVolumeClaim; a hostPath is the path itself; a ConfigMap is the copy
    the backend wrote into the job's directory at submit (``JobStore.write_config_map``).
    """
    if volume.kind == "configMap":
        return job_dir / CONFIG_MAPS_DIR / volume.ref
    if volume.kind == "emptyDir":
        return None if volume.medium == "Memory" else job_dir / "volumes" / volume.name
    if volume.kind == "persistentVolumeClaim":
        return claims_dir / volume.ref
    return Path(volume.ref)


def mount_table(plan: ReplicaPlan, job_dir: Path, claims_dir: Path) -> dict[str, Path]:
    """mountPath → host directory for every mount that needs one, longest path first."""
    table = {}
    for mount in plan.mounts:
        host = volume_host_dir(mount.volume, job_dir, claims_dir)
        if host is None or mount.mount_path == "/":
            continue
        table[mount.mount_path] = host / mount.sub_path if mount.sub_path else host
    return dict(sorted(table.items(), key=lambda item: -len(item[0])))


def rewrite_path(text: str, table: Mapping[str, Path]) -> str:
    """Map an in-pod path (also ``--flag=/path``) to its host directory; others unchanged."""
    prefix, sep, value = text.partition("=") if text.startswith("-") else ("", "", text)
    for mount_path, host in table.items():
        if value == mount_path or value.startswith(mount_path + "/"):
            return prefix + sep + str(host) + value[len(mount_path) :]
    return text


def process_spec(
    plan: ReplicaPlan,
    table: Mapping[str, Path],
    python: str,
    base_environ: Mapping[str, str],
) -> ReplicaProcessSpec:
    """The local process for ``plan``: ENTRYPOINT = ``python -m trainer`` when no command.

    The pod's env is laid over ``base_environ`` (the supervisor's, so PATH and friends
    keep working); every value and argument (not the executable) that names a mounted
    path is rewritten.
    """
    executable, *rest = plan.command or (python, *LOCAL_ENTRYPOINT)
    # The executable is a host program (resolved on PATH or given by us), never a path
    # inside the pod's volumes: rewriting it breaks when the host checkout lives under /tmp.
    argv = (executable, *(rewrite_path(part, table) for part in (*rest, *plan.args)))
    env = dict(base_environ)
    env.update({name: rewrite_path(value, table) for name, value in plan.env.items()})
    cwd = rewrite_path(plan.working_dir, table) if plan.working_dir else None
    return ReplicaProcessSpec(replica_id=plan.replica_id, argv=argv, env=env, cwd=cwd)
