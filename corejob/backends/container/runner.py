"""Runs replicas as containers of the trainer image (the ``container`` backend's runner).

Each replica is ``<engine> run`` of the pod's image on a per-job user-defined network,
named like its pod (``<job>-master-0``), so ``MASTER_ADDR=<job>-master-0`` resolves
through the network's DNS exactly as the cluster's headless Service does, and the
master listens on its declared ``pytorchjob-port``. The pod's volumes are bind mounts
of the same host directories the ``local`` backend uses; the memory ``/dev/shm`` becomes
``--shm-size``. The pod's env goes through an ``--env-file`` (mode 0600) so secrets
never appear on a command line. :func:`run_command` is pure; the rest is the shell.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import IO, Any

from corejob.backends.core_ledger import core_capacity
from corejob.backends.local.policy import exit_code_of
from corejob.backends.local.processes import die_with_parent
from corejob.backends.local.replicas import (
    ReplicaPlan,
    master_container_port,
    mount_table,
    replica_plans,
)
from corejob.job.flavors.replicas import replica_specs
from corejob.job.kubeflow import trainer_containers

# The project's private podman configuration (runtime runc, ulimits this kind of
# sandbox allows); used when corejob runs from a checkout and the user set none.
PROJECT_CONTAINERS_CONF = (
    Path(__file__).resolve().parents[3] / "image" / "podman" / "containers.conf"
)
_BINARY_SUFFIXES = {"Ki": "k", "Mi": "m", "Gi": "g", "Ti": "t"}


def engine_env(base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    if "CONTAINERS_CONF" not in env and PROJECT_CONTAINERS_CONF.is_file():
        env["CONTAINERS_CONF"] = str(PROJECT_CONTAINERS_CONF)
    return env


def find_engine(preferred: str | None = None) -> str | None:
    """``preferred`` if given, else podman, else docker (whichever is installed)."""
    if preferred:
        return shutil.which(preferred) or preferred
    return shutil.which("podman") or shutil.which("docker")


def network_name(job_name: str) -> str:
    return f"corejob-{job_name}"


def size_option(quantity: str) -> str:
    """A Kubernetes quantity (``4Gi``) as an engine size (``4g``)."""
    for suffix, short in _BINARY_SUFFIXES.items():
        if quantity.endswith(suffix):
            return quantity[: -len(suffix)] + short
    return quantity


def run_command(
    plan: ReplicaPlan,
    *,
    engine: str,
    network: str,
    env_file: Path,
    mounts: dict[str, Path],
    security: dict[str, Any],
    shm_size: str | None,
) -> list[str]:
    """The ``<engine> run`` argv for one replica (pure)."""
    argv = [engine, "run", "--rm", "--name", plan.pod_name, "--hostname", plan.pod_name]
    argv += ["--network", network, "--env-file", str(env_file)]
    if security.get("runAsUser") is not None:
        argv += ["--user", f"{security['runAsUser']}:{security.get('runAsGroup', 0)}"]
    if security.get("readOnlyRootFilesystem"):
        argv.append("--read-only")
    if shm_size:
        argv += ["--shm-size", shm_size]
    for mount in plan.mounts:
        if mount.volume.kind == "emptyDir" and mount.volume.medium == "Memory":
            if mount.mount_path != "/dev/shm":
                argv += ["--tmpfs", mount.mount_path]
            continue
        suffix = ":ro" if mount.read_only else ""
        argv += ["--volume", f"{mounts[mount.mount_path]}:{mount.mount_path}{suffix}"]
    if plan.working_dir:
        argv += ["--workdir", plan.working_dir]
    if plan.command:
        argv += ["--entrypoint", plan.command[0]]
        return [*argv, plan.image, *plan.command[1:], *plan.args]
    return [*argv, plan.image, *plan.args]


def _security(job: dict[str, Any], plan: ReplicaPlan) -> dict[str, Any]:
    """Pod securityContext overlaid with the ``pytorch`` container's."""
    pod = replica_specs(job)[plan.role]["template"]["spec"]
    container = trainer_containers(pod)[0]
    return {**(pod.get("securityContext") or {}), **(container.get("securityContext") or {})}


def _shm_size(job: dict[str, Any], plan: ReplicaPlan) -> str | None:
    for mount in plan.mounts:
        if mount.mount_path == "/dev/shm" and mount.volume.medium == "Memory":
            pod = replica_specs(job)[plan.role]["template"]["spec"]
            volume = next(v for v in pod.get("volumes") or [] if v["name"] == mount.volume.name)
            return size_option(str((volume.get("emptyDir") or {}).get("sizeLimit") or "1Gi"))
    return None


class ContainerHandle:
    """A replica's ``<engine> run`` client; the container's exit code is the client's."""

    def __init__(self, popen: subprocess.Popen[bytes], container: str, engine: str) -> None:
        self.popen = popen
        self.pid = popen.pid
        self.container = container
        self.engine = engine
        self._kill_at: float | None = None

    def poll(self) -> int | None:
        returncode = self.popen.poll()
        return None if returncode is None else exit_code_of(returncode)

    def terminate(self, grace_s: float) -> None:
        """``stop`` (SIGTERM, then the engine's own SIGKILL after ``grace_s``); then force."""
        if self._kill_at is None:
            self._kill_at = time.monotonic() + grace_s + 5
            subprocess.Popen(
                [self.engine, "stop", "--time", str(int(grace_s)), self.container],
                env=engine_env(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        elif time.monotonic() >= self._kill_at:
            remove_containers(self.engine, [self.container])
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)


def _podman_only(engine: str, *options: str) -> list[str]:
    """Options docker lacks. Without ``--ignore``, podman 4's ``rm --force`` of a list with
    one missing name removes nothing at all, and still exits 0."""
    return list(options) if "podman" in os.path.basename(engine) else []


def remove_containers(engine: str, names: list[str]) -> None:
    """Kill and remove at once (podman's ``rm --force`` would wait 10 s for SIGTERM)."""
    if names:
        _run_engine(engine, "rm", "--force", *_podman_only(engine, "--ignore", "--time=0"), *names)


def stop_containers(engine: str, names: list[str], grace_s: float) -> None:
    """SIGTERM the containers (the trainer saves ``last.ckpt``); SIGKILL after ``grace_s``."""
    if names:
        options = ["--time", str(int(grace_s)), *_podman_only(engine, "--ignore")]
        _run_engine(engine, "stop", *options, *names, timeout=grace_s + 120)


def remove_network(engine: str, network: str) -> None:
    """Remove a job's network (fails harmlessly while a container still uses it)."""
    _run_engine(engine, "network", "rm", network)


def _run_engine(engine: str, *args: str, timeout: float = 120) -> None:
    subprocess.run(
        [engine, *args], env=engine_env(), capture_output=True, timeout=timeout, check=False
    )


class ContainerRunner:
    """Turns plans into containers on the job's own network."""

    name = "container"

    def __init__(self, job_dir: Path, claims_dir: Path, job_name: str, engine: str | None) -> None:
        self.job_dir = job_dir
        self.claims_dir = claims_dir
        self.engine = find_engine(engine) or "podman"
        self.network = network_name(job_name)
        self.job: dict[str, Any] = {}
        self.containers: list[str] = []

    def plans(self, job: dict[str, Any]) -> list[ReplicaPlan]:
        self.job = job
        plans = replica_plans(
            job,
            master_addr=f"{job['metadata']['name']}-master-0",
            master_port=master_container_port(job),
            cpu_count=core_capacity(),
            host_environ=os.environ,
        )
        self.containers = [plan.pod_name for plan in plans]
        remove_containers(self.engine, self.containers)  # leftovers of an earlier run
        self._engine("network", "create", self.network, check=False)
        return plans

    def start(self, plan: ReplicaPlan, log: IO[bytes]) -> ContainerHandle:
        mounts = mount_table(plan, self.job_dir, self.claims_dir)
        for host_dir in mounts.values():
            host_dir.mkdir(parents=True, exist_ok=True)
            host_dir.chmod(0o777)  # the image's user (uid 1000) writes here
        env_file = self.job_dir / "env" / f"{plan.replica_id}.env"
        env_file.parent.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.writelines(f"{name}={value}\n" for name, value in plan.env.items())
        remove_containers(self.engine, [plan.pod_name])
        argv = run_command(
            plan,
            engine=self.engine,
            network=self.network,
            env_file=env_file,
            mounts=mounts,
            security=_security(self.job, plan),
            shm_size=_shm_size(self.job, plan),
        )
        popen = subprocess.Popen(
            argv,
            env=engine_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent(),  # the client's SIGTERM reaches the container
        )
        return ContainerHandle(popen, plan.pod_name, self.engine)

    def close(self) -> None:
        remove_containers(self.engine, self.containers)
        remove_network(self.engine, self.network)  # its containers are gone

    def _engine(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.engine, *args],
            env=engine_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=check,
        )
