"""Runs replicas as local processes (the ``local`` backend's runner).

Every replica starts in its own session, so its process group holds everything it
spawns (torchrun children, data-loader workers): stopping a replica signals the whole
group, and once a replica has exited its group is killed too, so nothing is orphaned.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from corejob.backends.local.policy import exit_code_of
from corejob.backends.local.replicas import ReplicaPlan, mount_table, process_spec, replica_plans


def free_port() -> int:
    """A TCP port nobody listens on now (the local stand-in for the master's Service port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def resolve_program(argv: Sequence[str], bin_dir: str) -> tuple[str, ...]:
    """A bare program name (``torchrun``, ``corejob-train``) is looked up next to the
    interpreter first, so a virtual environment works without being activated."""
    if argv and os.sep not in argv[0]:
        candidate = os.path.join(bin_dir, argv[0])
        if os.access(candidate, os.X_OK):
            return (candidate, *argv[1:])
    return tuple(argv)


class ProcessHandle:
    """One running replica process; ``poll`` returns its container-style exit code."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen = popen
        self.pid = popen.pid
        self._kill_at: float | None = None

    def poll(self) -> int | None:
        returncode = self.popen.poll()
        if returncode is None:
            return None
        kill_group(self.pid, signal.SIGKILL)  # stragglers the replica left behind
        return exit_code_of(returncode)

    def terminate(self, grace_s: float) -> None:
        """SIGTERM the group (the trainer saves ``last.ckpt``), SIGKILL after ``grace_s``."""
        if self._kill_at is None:
            self._kill_at = time.monotonic() + grace_s
            kill_group(self.pid, signal.SIGTERM)
        elif time.monotonic() >= self._kill_at:
            kill_group(self.pid, signal.SIGKILL)


class ProcessRunner:
    """Turns plans into processes; the master is reached at 127.0.0.1 on a free port."""

    name = "local"

    def __init__(self, job_dir: Path, claims_dir: Path, python: str = sys.executable) -> None:
        self.job_dir = job_dir
        self.claims_dir = claims_dir
        self.python = python

    def plans(self, job: dict[str, Any]) -> list[ReplicaPlan]:
        return replica_plans(
            job,
            master_addr="127.0.0.1",
            master_port=free_port(),
            cpu_count=os.cpu_count() or 1,
            host_environ=os.environ,
        )

    def start(self, plan: ReplicaPlan, log: IO[bytes]) -> ProcessHandle:
        table = mount_table(plan, self.job_dir, self.claims_dir)
        for host_dir in table.values():
            host_dir.mkdir(parents=True, exist_ok=True)
        spec = process_spec(plan, table, self.python, os.environ)
        popen = subprocess.Popen(
            resolve_program(spec.argv, os.path.dirname(self.python)),
            env=dict(spec.env),
            cwd=spec.cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return ProcessHandle(popen)

    def close(self) -> None:
        """Nothing to tear down for processes."""
