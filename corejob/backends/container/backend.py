"""The ``container`` backend: every replica a container of the trainer image.

Same store, supervisor, lifecycle rules and CLI behaviour as the ``local`` backend
(:class:`corejob.backends.local.backend.LocalBackend`); only the runner differs
(:mod:`corejob.backends.container.runner`): the replicas run the image's own entrypoint, reach
the master by its pod name over a per-job network, and see the pod's volumes as bind
mounts. Needs podman (or docker) and the image (``make image``).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from corejob.backends.container.runner import (
    engine_env,
    find_engine,
    network_name,
    remove_containers,
    remove_network,
    stop_containers,
)
from corejob.backends.local.backend import LocalBackend
from corejob.backends.local.operator_env import JobSpecError
from corejob.backends.local.replicas import replica_count, replica_specs_of
from corejob.errors import UsageError
from corejob.job.flavors.replicas import master_pod_spec
from corejob.job.kubeflow import trainer_containers


class ContainerBackend(LocalBackend):
    """Runs jobs as podman/docker containers; state lives in ``runs_dir``."""

    name = "container"
    runner = "container"

    def __init__(self, runs_dir: Path | str = Path("runs"), engine: str | None = None) -> None:
        super().__init__(runs_dir)
        self.engine = find_engine(engine)

    def check(self, job: dict[str, Any]) -> None:
        super().check(job)
        if self.engine is None:
            raise UsageError(
                "the container backend needs podman or docker: install one "
                "(make ci-system-deps), or use --backend local"
            )
        image = self._image(job)
        probe = subprocess.run(
            [self.engine, "image", "inspect", image],
            env=engine_env(),
            capture_output=True,
            timeout=60,
            check=False,
        )
        if probe.returncode != 0:
            raise UsageError(f"image {image} is not in {self.engine}'s store: run `make image`")

    def _supervisor_command(self, name: str) -> list[str]:
        return [*super()._supervisor_command(name), "--engine", self.engine or "podman"]

    @staticmethod
    def _image(job: dict[str, Any]) -> str:
        return trainer_containers(master_pod_spec(job))[0]["image"]

    def _kill_leftovers(self, name: str, record: dict[str, Any], grace_s: float) -> None:
        """Also the job's containers: they outlive a killed ``run`` client. Every pod name
        of the job is tried, since a replica between restarts has no entry in ``record``."""
        super()._kill_leftovers(name, record, grace_s)
        if not self.engine:
            return
        replicas = (record.get("replicas") or {}).values()
        names = {entry["container"] for entry in replicas if "container" in entry}
        try:
            roles = replica_specs_of(self.store.read_job(name) or {})
        except JobSpecError:
            roles = []
        for role, spec in roles:
            names |= {f"{name}-{role.lower()}-{i}" for i in range(replica_count(spec))}
        if grace_s:
            stop_containers(self.engine, sorted(names), grace_s)
        remove_containers(self.engine, sorted(names))
        remove_network(self.engine, network_name(name))
