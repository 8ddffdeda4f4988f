"""The background process that plays the operator for one local job.

``python -m corejob.backends.local.supervisor --runs-dir DIR --name JOB [--runner container]``
starts every replica (through a runner: local processes or containers), reconciles
their exits with :mod:`corejob.backends.local.policy` a few times a second, and writes the job's
status and the replicas' pids to the store after every change. SIGTERM (``corejob
cancel``) stops every replica and ends it without touching the job.

``--detach`` forks it away from its launcher, so no CLI keeps a zombie; the launcher
exits once the supervisor is on record (0), or with the reason it could not be (1, the
reason on stdout), so ``submit`` reports a supervisor that never started. Once on
record it forks its watchdog (:func:`~corejob.backends.local.processes.start_watchdog`),
which runs the backend's reconciliation when the supervisor ends, however it ends. It
reserves ``supervisor.failure`` before it starts anything, so that when it cannot go on
(its state cannot be written: a full disk) it can still record why (:func:`record_failure`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from corejob.backends.core_ledger import CoreLedger, cores_needed
from corejob.backends.local.log_index import LogSampler
from corejob.backends.local.operator_env import JobSpecError
from corejob.backends.local.policy import (
    CREATED,
    DELETED,
    FAILED,
    RUNNING,
    SUCCEEDED,
    ReplicaState,
    RunPolicy,
    is_finished,
    reconcile,
    set_condition,
)
from corejob.backends.local.processes import ProcessRunner, start_watchdog
from corejob.backends.local.replicas import ReplicaPlan, total_processes
from corejob.backends.local.store import JobStore, StoreWriteError, process_start_time
from corejob.job.flavors.replicas import master_pod_spec

DEFAULT_GRACE_S = 30.0
START_FAILURE_EXIT_CODE = 127
READY = b"ready"  # what the detached supervisor tells its launcher once it is on record


class Handle(Protocol):
    pid: int

    def poll(self) -> int | None: ...
    def terminate(self, grace_s: float) -> None: ...


class Runner(Protocol):
    name: str

    def plans(self, job: dict[str, Any]) -> list[ReplicaPlan]: ...
    def start(self, plan: ReplicaPlan, log: Any) -> Handle: ...
    def close(self) -> None: ...


def timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def say(message: str) -> None:
    """One line to supervisor.log; lost, not fatal, when the disk is full."""
    with contextlib.suppress(OSError):
        os.write(sys.stdout.fileno(), f"{timestamp()} {message}\n".encode())


def failure_message(pid: int | None, reason: str) -> str:
    """The Failed condition's message for a supervisor that stopped because of ``reason``."""
    return f"the local supervisor (pid {pid}) failed: {reason}"


def termination_grace_s(job: dict[str, Any]) -> float:
    """The Master pod's ``terminationGracePeriodSeconds`` (Kubernetes' default 30 s)."""
    value = master_pod_spec(job).get("terminationGracePeriodSeconds")
    return DEFAULT_GRACE_S if value is None else float(value)


class Supervisor:
    """Runs one job to completion (or cancellation), keeping ``job.json`` current."""

    def __init__(
        self,
        store: JobStore,
        name: str,
        runner: Runner,
        poll_s: float = 0.2,
        ledger: CoreLedger | None = None,
    ) -> None:
        self.store = store
        self.name = name
        self.runner = runner
        self.poll_s = poll_s
        self.cancelled = False
        self.handles: dict[str, Handle] = {}
        self.cleaned_up: set[str] = set()
        self.log_sampler = LogSampler()
        self.ledger = ledger
        self.cpu: dict[str, Any] = {}

    def run(self, ready: Callable[[], None] | None = None) -> int:
        """Run the job to its end; ``ready`` is called once this supervisor is on record."""
        job = self.store.read_job(self.name)
        if job is None:
            raise LookupError(f"no job {self.name!r} in {self.store.runs_dir}")
        signal.signal(signal.SIGTERM, self._on_cancel)
        signal.signal(signal.SIGINT, self._on_cancel)
        self.store.reserve_failure_note(self.name)
        self._record({})
        if ready is not None:
            ready()
        try:
            try:
                plans = {plan.replica_id: plan for plan in self.runner.plans(job)}
            except JobSpecError as error:
                status = set_condition(job.get("status") or {}, FAILED, str(error), timestamp())
                self.store.write_job(self.name, {**job, "status": status})
                return 2
            if self._wait_for_cores(job):
                self._loop(job, plans)
        finally:
            self._kill_remaining()
            self.runner.close()
            if self.ledger is not None:
                # A full disk must not replace the real reason: a dead holder counts as free.
                with contextlib.suppress(OSError):
                    self.ledger.release(self.name)
            self.log_sampler.sample(self.store.log_paths(self.name), time.time(), force=True)
        return 0

    def _wait_for_cores(self, job: dict[str, Any]) -> bool:
        """Queue until the core ledger gives this job its cores (False: cancelled meanwhile).

        While queued the job shows ``Created`` with the reason (which jobs hold the cores);
        a job with more processes than the machine has cores runs alone, marked
        ``oversubscribed`` so its results are flagged."""
        if self.ledger is None:
            return True
        processes = total_processes(job)
        need = cores_needed(processes, self.ledger.capacity)
        self.cpu = {
            "cores": need,
            "capacity": self.ledger.capacity,
            "oversubscribed": processes > self.ledger.capacity,
        }
        queued_at = time.monotonic()

        def on_wait(message: str) -> None:
            say(message)
            self.cpu["queued"] = message
            self._record({})
            status = set_condition(
                job.get("status") or {}, CREATED, message, timestamp(), reason="QueuedForCPU"
            )
            self.store.write_job(self.name, {**job, "status": status})

        admitted = self.ledger.acquire(self.name, need, lambda: self.cancelled, on_wait)
        self.cpu.pop("queued", None)
        self.cpu["queued_s"] = round(time.monotonic() - queued_at, 1)
        if self.cpu["oversubscribed"]:
            say(f"oversubscribed: {processes} processes on {self.ledger.capacity} cores")
        self._record({})
        return admitted

    def _kill_remaining(self) -> None:
        """After a crash of this loop no replica may outlive its supervisor."""
        for attempt in range(2):
            for handle in self.handles.values():
                handle.terminate(0.0)
            if attempt == 0 and self.handles:
                time.sleep(0.5)

    def _on_cancel(self, signum: int, frame: Any) -> None:
        self.cancelled = True

    def _loop(self, job: dict[str, Any], plans: dict[str, ReplicaPlan]) -> None:
        policy = RunPolicy.of(job)
        grace = termination_grace_s(job)
        states = {
            rid: ReplicaState(rid, plan.role, plan.restart_policy) for rid, plan in plans.items()
        }
        status = {**(job.get("status") or {}), "startTime": timestamp()}
        started = time.monotonic()
        while True:
            states = self._collect_exits(states)
            self.log_sampler.sample(self.store.log_paths(self.name), time.time())
            if self.cancelled:
                if not self._stop_all(grace):
                    return
            else:
                decision = reconcile(
                    self.name,
                    status,
                    states,
                    policy,
                    elapsed_s=time.monotonic() - started,
                    clock=time.monotonic(),
                    now=timestamp(),
                )
                if is_finished(decision.status):
                    self.cleaned_up.update(decision.stop)
                states = self._apply(decision.start, decision.stop, decision.replicas, plans, grace)
                if decision.status != status:
                    status = decision.status
                    self.store.write_job(self.name, {**job, "status": status})
                if decision.finished and not self.handles:
                    return
            time.sleep(self.poll_s)

    def _collect_exits(self, states: dict[str, ReplicaState]) -> dict[str, ReplicaState]:
        changed = False
        for rid, handle in list(self.handles.items()):
            code = handle.poll()
            if code is None:
                continue
            del self.handles[rid]
            phase = SUCCEEDED if code == 0 else FAILED
            if rid in self.cleaned_up and code != 0:
                phase = DELETED
            states = {
                **states,
                rid: replace(states[rid], phase=phase, exit_code=code, failed_at=None),
            }
            say(f"{rid} exited with code {code}")
            changed = True
        if changed:
            self._record(states)
        return states

    def _apply(
        self,
        start: list[str],
        stop: list[str],
        states: dict[str, ReplicaState],
        plans: dict[str, ReplicaPlan],
        grace: float,
    ) -> dict[str, ReplicaState]:
        for rid in stop:
            if rid in self.handles:
                self.handles[rid].terminate(grace)
        for rid in start:
            states = {**states, rid: self._start(plans[rid], states[rid])}
        if start:
            self._record(states)
        return states

    def _start(self, plan: ReplicaPlan, state: ReplicaState) -> ReplicaState:
        log_path = self.store.log_path(self.name, plan.replica_id)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        # Unbuffered: a note a full disk refuses is lost at once, not raised again at close.
        with open(log_path, "ab", buffering=0) as log:
            if state.restarts:
                note = (
                    f"corejob: restart {state.restarts} of {plan.replica_id} "
                    f"(previous exit code {state.exit_code})\n"
                )
                with contextlib.suppress(OSError):
                    log.write(note.encode())
            try:
                self.handles[plan.replica_id] = self.runner.start(plan, log)
            except OSError as error:
                with contextlib.suppress(OSError):
                    log.write(f"corejob: cannot start {plan.replica_id}: {error}\n".encode())
                return replace(
                    state, phase=FAILED, exit_code=START_FAILURE_EXIT_CODE, failed_at=None
                )
        say(f"started {plan.replica_id} (attempt {state.restarts + 1})")
        return replace(state, phase=RUNNING, exit_code=None)

    def _stop_all(self, grace: float) -> bool:
        """Cancellation: stop every replica; False once none is left."""
        for handle in self.handles.values():
            handle.terminate(grace)
        return bool(self.handles)

    def _record(self, states: dict[str, ReplicaState]) -> None:
        """supervisor.json: who to signal on cancel, even if this process dies."""
        replicas = {
            rid: {
                "phase": state.phase,
                "exit_code": state.exit_code,
                "restarts": state.restarts,
                **self._pid_entry(rid),
            }
            for rid, state in states.items()
        }
        self.store.write_supervisor(
            self.name,
            {
                "pid": os.getpid(),
                "start_time": process_start_time(os.getpid()),
                "runner": self.runner.name,
                "replicas": replicas,
                "cpu": self.cpu,
            },
        )

    def _pid_entry(self, rid: str) -> dict[str, Any]:
        handle = self.handles.get(rid)
        if handle is None or not getattr(handle, "pid", None):
            return {}
        entry: dict[str, Any] = {"pid": handle.pid, "start_time": process_start_time(handle.pid)}
        container = getattr(handle, "container", None)
        if container:
            entry["container"] = container
        return entry


def failure_reason(error: BaseException, log: Path) -> str:
    """``error`` in a user's words: what could not be written, or where the traceback is."""
    if isinstance(error, StoreWriteError):
        return f"{error.strerror} writing {error.filename}"
    if isinstance(error, OSError) and error.strerror:
        where = f" ({error.filename})" if error.filename else ""
        return f"{error.strerror}{where}; traceback in {log}"
    return f"{type(error).__name__}: {error}; traceback in {log}"


def _make_runner(args: argparse.Namespace, store: JobStore) -> Runner:
    job_dir = store.job_dir(args.name)
    if args.runner == "container":
        from corejob.backends.container.runner import ContainerRunner

        return ContainerRunner(job_dir, store.claims_dir, args.name, engine=args.engine)
    return ProcessRunner(job_dir, store.claims_dir)


def _detach(log: Path) -> int:
    """Fork away from the launcher; in the child, the pipe that tells it how start-up went.

    The launcher (the parent) exits 0 on :data:`READY`, else 1 with the reason on its
    stdout, which the submitting CLI reads. The child writes to ``log`` from here on.
    """
    read_fd, write_fd = os.pipe()
    if os.fork() > 0:
        os.close(write_fd)
        with os.fdopen(read_fd, "rb") as pipe:
            answer = pipe.read()
        if answer == READY:
            os._exit(0)
        reason = answer.decode(errors="replace").strip() or "it exited before recording itself"
        os.write(sys.stdout.fileno(), f"{reason}\n".encode())
        os._exit(1)
    os.close(read_fd)
    try:
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as error:
        _tell(write_fd, f"cannot open {log}: {error.strerror}".encode())
        os._exit(1)
    for target in (sys.stdout.fileno(), sys.stderr.fileno()):
        os.dup2(fd, target)
    os.close(fd)
    return write_fd


def _tell(fd: int | None, answer: bytes) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.write(fd, answer)
        with contextlib.suppress(OSError):
            os.close(fd)


def _reconcile_with_backend(args: argparse.Namespace) -> None:
    """The watchdog's work once this supervisor is gone: the backend's own reconciliation
    (stop leftover process groups and containers, then record Failed with the reason)."""
    from corejob.backends.local.backend import LocalBackend

    if args.runner == "container":
        from corejob.backends.container.backend import ContainerBackend

        ContainerBackend(args.runs_dir, engine=args.engine).get(args.name)
    else:
        LocalBackend(args.runs_dir).get(args.name)


def record_failure(store: JobStore, name: str, reason: str) -> None:
    """Leave ``reason`` where ``status`` finds it, as far as a full disk allows."""
    pid = os.getpid()
    say(f"failed: {reason}")
    with contextlib.suppress(OSError):
        store.write_failure_note(name, pid, reason)
    with contextlib.suppress(OSError, ValueError):
        job = store.read_job(name)
        if job is not None and not is_finished(job.get("status") or {}):
            message = failure_message(pid, reason)
            status = set_condition(job.get("status") or {}, FAILED, message, timestamp())
            store.write_job(name, {**job, "status": status})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m corejob.backends.local.supervisor")
    parser.add_argument("--runs-dir", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--runner", choices=["local", "container"], default="local")
    parser.add_argument("--engine", default=None)
    parser.add_argument("--detach", action="store_true")
    args = parser.parse_args(argv)
    store = JobStore(args.runs_dir)
    log = store.job_dir(args.name) / "supervisor.log"
    launcher = _detach(log) if args.detach else None

    def ready() -> None:
        nonlocal launcher
        _tell(launcher, READY)
        launcher = None
        start_watchdog(lambda: _reconcile_with_backend(args))

    try:
        runner = _make_runner(args, store)
        return Supervisor(store, args.name, runner, ledger=CoreLedger(args.runs_dir)).run(ready)
    except Exception as error:
        with contextlib.suppress(Exception):
            traceback.print_exc()
        reason = failure_reason(error, log)
        record_failure(store, args.name, reason)
        _tell(launcher, reason.encode())
        return 1


if __name__ == "__main__":
    sys.exit(main())
