"""The one place that reads the distributed environment (docs/CONTRACT.md).

A Kubeflow PyTorchJob starts one process per pod and injects ``MASTER_ADDR``,
``MASTER_PORT``, ``WORLD_SIZE`` (pods) and ``RANK`` (pod rank). Lightning does not detect
that layout on its own, so it must be handed a ``KubeflowEnvironment`` with
``num_nodes=WORLD_SIZE, devices=1``. With ``nprocPerNode > 1`` the container runs
``torchrun``, which adds ``LOCAL_WORLD_SIZE`` and ``TORCHELASTIC_RUN_ID``; then every pod
hosts ``LOCAL_WORLD_SIZE`` processes. Kubeflow Trainer v2 (a ``TrainJob``) injects *only*
``PET_NNODES``, ``PET_NPROC_PER_NODE``, ``PET_NODE_RANK``, ``PET_MASTER_ADDR`` and
``PET_MASTER_PORT`` (torchrun's defaults), no ``RANK``/``WORLD_SIZE``: a trainer started
directly in such a pod (one process per node) derives its rank from them, and
:func:`configure_process` exports the equivalent ``MASTER_ADDR``/``MASTER_PORT``/
``WORLD_SIZE``/``RANK`` for torch.distributed. Anything else is a single process.

:func:`distributed_layout` is pure (env mapping in, :class:`Layout` out) so every layout is
testable without processes; :func:`configure_process` and :func:`strategy_for` are the
thin effectful shell. No other trainer module reads ranks from ``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

import torch

from trainer.contract.errors import ConfigError

LayoutKind = Literal["single", "kubeflow", "torchrun", "trainer_v2"]
DEFAULT_DDP_TIMEOUT_S = 600
_SOURCE = "environment"
PET_VARIABLES = (
    "PET_NNODES",
    "PET_NPROC_PER_NODE",
    "PET_NODE_RANK",
    "PET_MASTER_ADDR",
    "PET_MASTER_PORT",
)


@dataclass(frozen=True)
class Layout:
    """How many processes run where, and how Lightning must be told about it."""

    kind: LayoutKind
    world_size: int
    rank: int
    num_nodes: int
    devices: int
    backend: str  # "gloo" | "nccl" ("" for a single process)
    torch_threads: int | None  # from OMP_NUM_THREADS; None: leave torch's default
    # torch.distributed variables the launcher did not set but this layout implies
    # (Trainer v2's PET_* layout); configure_process puts them in os.environ.
    exports: tuple[tuple[str, str], ...] = ()

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_rank_zero(self) -> bool:
        return self.rank == 0


def _int_var(env: Mapping[str, str], name: str, minimum: int = 0) -> int:
    raw = env.get(name, "")
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(_SOURCE, name, f"{raw!r} is not an integer") from None
    if value < minimum:
        raise ConfigError(_SOURCE, name, f"{value} must be >= {minimum}")
    return value


def _threads(env: Mapping[str, str]) -> int | None:
    if not env.get("OMP_NUM_THREADS"):
        return None
    return _int_var(env, "OMP_NUM_THREADS", minimum=1)


def backend_for(accelerator: str) -> str:
    """gloo on CPU, nccl on CUDA (the contract; nccl cannot run without GPUs)."""
    return "nccl" if accelerator in ("gpu", "cuda") else "gloo"


def resolve_accelerator(accelerator: str) -> str:
    """``auto`` → ``gpu`` when CUDA is usable, else ``cpu`` (decided once, before the layout)."""
    if accelerator == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    return accelerator


def distributed_layout(env: Mapping[str, str], accelerator: str) -> Layout:
    """Derive the process layout from the launcher's environment variables (pure)."""
    backend = backend_for(accelerator)
    threads = _threads(env)
    if env.get("TORCHELASTIC_RUN_ID") and env.get("LOCAL_WORLD_SIZE"):
        world = _int_var(env, "WORLD_SIZE", minimum=1)
        local = _int_var(env, "LOCAL_WORLD_SIZE", minimum=1)
        if world % local:
            raise ConfigError(
                _SOURCE, "WORLD_SIZE", f"{world} is not a multiple of LOCAL_WORLD_SIZE={local}"
            )
        rank = _int_var(env, "RANK")
        return Layout("torchrun", world, rank, world // local, local, backend, threads)
    if all(env.get(k) for k in ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK")):
        world = _int_var(env, "WORLD_SIZE", minimum=1)
        rank = _int_var(env, "RANK")
        _int_var(env, "MASTER_PORT", minimum=1)
        if rank >= world:
            raise ConfigError(_SOURCE, "RANK", f"{rank} must be < WORLD_SIZE={world}")
        if world > 1:
            return Layout("kubeflow", world, rank, world, 1, backend, threads)
        return Layout("single", 1, 0, 1, 1, "", threads)
    if all(env.get(k) for k in PET_VARIABLES):
        return _trainer_v2_layout(env, backend, threads)
    return Layout("single", 1, 0, 1, 1, "", threads)


def _trainer_v2_layout(env: Mapping[str, str], backend: str, threads: int | None) -> Layout:
    """One process per node from Trainer v2's PET_* variables alone (no torchrun)."""
    if ":" in env["PET_NNODES"]:
        raise ConfigError(
            _SOURCE, "PET_NNODES", f"{env['PET_NNODES']!r}: elastic ranges need torchrun"
        )
    nodes = _int_var(env, "PET_NNODES", minimum=1)
    if env["PET_NPROC_PER_NODE"] != "1":
        raise ConfigError(
            _SOURCE,
            "PET_NPROC_PER_NODE",
            f"{env['PET_NPROC_PER_NODE']!r} processes per node need torchrun as the command "
            "(the chart does that for nprocPerNode > 1); set trainer.numProcPerNode to 1 otherwise",
        )
    rank = _int_var(env, "PET_NODE_RANK")
    port = _int_var(env, "PET_MASTER_PORT", minimum=1)
    if rank >= nodes:
        raise ConfigError(_SOURCE, "PET_NODE_RANK", f"{rank} must be < PET_NNODES={nodes}")
    if nodes == 1:
        return Layout("single", 1, 0, 1, 1, "", threads)
    exports = (
        ("MASTER_ADDR", env["PET_MASTER_ADDR"]),
        ("MASTER_PORT", str(port)),
        ("WORLD_SIZE", str(nodes)),
        ("RANK", str(rank)),
    )
    return Layout("trainer_v2", nodes, rank, nodes, 1, backend, threads, exports)


def configure_process(layout: Layout) -> None:
    """Apply per-process settings: torch intra-op threads from ``OMP_NUM_THREADS``, and the
    torch.distributed variables a PET_*-only launcher left out (Lightning and the process
    group read them from the environment)."""
    if layout.torch_threads is not None:
        torch.set_num_threads(layout.torch_threads)
    for name, value in layout.exports:
        os.environ[name] = value


def trainer_kwargs(layout: Layout, ddp_timeout_s: float = DEFAULT_DDP_TIMEOUT_S) -> dict[str, Any]:
    """``pl.Trainer`` keyword arguments (strategy, plugins, num_nodes, devices) for a layout."""
    if not layout.is_distributed:
        return {"strategy": "auto", "num_nodes": 1, "devices": 1}
    from pytorch_lightning.plugins.environments import (
        KubeflowEnvironment,
        TorchElasticEnvironment,
    )
    from pytorch_lightning.strategies import DDPStrategy

    # Trainer v2's PET_* layout is Kubeflow's once configure_process exported its variables.
    pod_per_process = layout.kind in ("kubeflow", "trainer_v2")
    environment = KubeflowEnvironment() if pod_per_process else TorchElasticEnvironment()
    strategy = DDPStrategy(
        cluster_environment=environment,
        process_group_backend=layout.backend,
        timeout=timedelta(seconds=ddp_timeout_s),
        # Multi-dataset batches leave the readouts of absent datasets without gradients.
        find_unused_parameters=True,
    )
    return {"strategy": strategy, "num_nodes": layout.num_nodes, "devices": layout.devices}


def current_layout(accelerator: str) -> Layout:
    """The layout of this process (reads ``os.environ``; the only caller of the pure core)."""
    return distributed_layout(os.environ, accelerator)


# Messages gloo/nccl/c10d raise when a peer vanished or a collective timed out. Some arrive
# as plain RuntimeError (gloo pair errors), so the type alone is not enough.
_COMMUNICATION_FAILURE_MARKERS = (
    "connection closed by peer",
    "connection reset",
    "connection refused",
    "broken pipe",
    "timed out",
    "timeout",
    "socket",
    "gloo",
    "nccl",
    "c10d",
    "process group",
    "processgroup",
)


def is_communication_failure(error: BaseException) -> bool:
    """True when ``error`` (or its cause chain) says a peer died or a collective timed out.

    Such failures are retryable (exit 129): restarting the gang resumes from ``last.ckpt``.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, torch.distributed.DistError):
            return True
        if isinstance(current, RuntimeError | ConnectionError | TimeoutError):
            text = str(current).lower()
            if any(marker in text for marker in _COMMUNICATION_FAILURE_MARKERS):
                return True
        current = current.__cause__ or current.__context__
    return False
