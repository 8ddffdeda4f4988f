"""Runs replicas as local processes (the ``local`` backend's runner); none outlives the supervisor.

Every replica starts in its own session, so its process group holds everything it
spawns (torchrun children, data-loader workers): stopping a replica signals the whole
group, and once a replica has exited its group is killed too, so nothing is orphaned.

Two mechanisms tie the replicas to the supervisor, because either alone leaves a gap:

- :func:`die_with_parent`: every replica process (or ``podman run`` client) asks the
  kernel for SIGTERM when the supervisor dies (``PR_SET_PDEATHSIG``); the trainer takes
  SIGTERM as preemption, saves ``last.ckpt`` and exits 143. The signal comes when the
  *thread* that forked the replica ends, so the supervisor forks from its main thread.
  It reaches only the replica itself, not what the replica spawned, and a container
  outlives its ``run`` client.
- :func:`start_watchdog`: a forked process that waits for the supervisor to end (its
  pipe reaches EOF, however the supervisor died) and then runs the backend's clean-up:
  whole process groups (:func:`stop_leftovers`), containers, and a Failed status that
  names the cause. ``status`` does the same when it finds a dead supervisor first.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from corejob.backends.core_ledger import core_capacity
from corejob.backends.local.policy import exit_code_of
from corejob.backends.local.replicas import ReplicaPlan, mount_table, process_spec, replica_plans
from corejob.backends.local.store import process_alive, process_start_time

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# How long the watchdog waits for its supervisor's exit to finish after the pipe closed.
EXIT_WAIT_S = 10.0
# How long SIGKILLed process groups may take to disappear.
KILL_WAIT_S = 5.0


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child receive ``sig`` when this process dies.

    None where the kernel has no such request (not Linux). libc is loaded here, in the
    parent: the function runs between fork and exec, where loading a library may block.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request took effect
            os.kill(os.getpid(), sig)

    return preexec


def start_watchdog(on_death: Callable[[], None]) -> int:
    """Fork a process that calls ``on_death`` once this process has exited; its pid.

    The child holds the read end of a pipe whose only writer is this process, so the
    read returns at this process's exit, also by SIGKILL. It runs in a session of its own,
    so killing the supervisor's process group does not take the watchdog with it.
    """
    read_fd, write_fd = os.pipe()
    supervisor = os.getpid()
    started = process_start_time(supervisor)
    pid = os.fork()
    if pid:
        os.close(read_fd)
        return pid
    code = 0
    try:
        os.close(write_fd)
        os.setsid()
        while os.read(read_fd, 1):
            pass
        deadline = time.monotonic() + EXIT_WAIT_S
        while process_alive(supervisor, started) and time.monotonic() < deadline:
            time.sleep(0.05)
        on_death()
    except BaseException:  # a forked child must never return into the supervisor's code
        code = 1
        with contextlib.suppress(Exception):
            import traceback

            traceback.print_exc()
    finally:
        os._exit(code)


def stop_leftovers(record: dict[str, Any], grace_s: float) -> None:
    """Stop what the supervisor of ``record`` (``supervisor.json``) left running.

    A supervisor still alive (unresponsive) is SIGKILLed. Each replica's whole process
    group gets SIGTERM (the trainer saves ``last.ckpt``) while its leader runs, SIGKILL
    once the leaders are gone or ``grace_s`` has passed. Returns once no group is left,
    or after a bounded wait.
    """
    if process_alive(record.get("pid"), record.get("start_time")):
        with contextlib.suppress(ProcessLookupError):
            os.kill(record["pid"], signal.SIGKILL)
    entries = [e for e in (record.get("replicas") or {}).values() if e.get("pid")]
    leaders = [e for e in entries if process_alive(e["pid"], e.get("start_time"))]
    groups = [e["pid"] for e in entries if _group_is_ours(e)]
    if leaders and grace_s > 0:

        def leaders_gone() -> bool:
            return not any(process_alive(e["pid"], e.get("start_time")) for e in leaders)

        _signal_groups(groups, signal.SIGTERM)
        _wait(leaders_gone, grace_s)
    _signal_groups(groups, signal.SIGKILL)
    _wait(lambda: not _groups_running(groups), KILL_WAIT_S)


def _group_is_ours(entry: dict[str, Any]) -> bool:
    """Whether the process group a replica led is still its own: its leader runs, or no
    process has the leader's pid (a pid is not reused while its group has members)."""
    pid = entry["pid"]
    return process_alive(pid, entry.get("start_time")) or process_start_time(pid) is None


def _signal_groups(groups: list[int], sig: int) -> None:
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)


def _groups_running(groups: list[int]) -> bool:
    """Whether a process of ``groups`` still runs; zombies (dead, not yet reaped) do not."""
    if not groups:
        return False
    if not Path("/proc/self/stat").exists():
        return any(_signal_reaches(pgid) for pgid in groups)
    wanted = {str(pgid) for pgid in groups}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        state, _ppid, pgrp = text[text.rindex(")") + 2 :].split()[:3]
        if pgrp in wanted and state not in ("Z", "X"):
            return True
    return False


def _signal_reaches(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait(done: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:
        time.sleep(0.05)


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
            cpu_count=core_capacity(),
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
            preexec_fn=die_with_parent(),
        )
        return ProcessHandle(popen)

    def close(self) -> None:
        """Nothing to tear down for processes."""
