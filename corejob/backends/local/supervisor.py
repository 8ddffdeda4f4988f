"""The background process that plays the operator for one local job.

``python -m corejob.backends.local.supervisor --runs-dir DIR --name JOB [--runner container]``
starts every replica (through a runner: local processes or containers), reconciles
their exits with :mod:`corejob.backends.local.policy` a few times a second, and writes the job's
status and the replicas' pids to the store after every change. It outlives the CLI that
started it (``--detach`` forks it away from the launcher, so no CLI keeps a zombie);
SIGTERM (``corejob cancel``) stops every replica and ends it without touching the job.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
import traceback
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol

from corejob.backends.local.log_index import LogSampler
from corejob.backends.local.operator_env import JobSpecError
from corejob.backends.local.policy import (
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
from corejob.backends.local.replicas import ReplicaPlan
from corejob.backends.local.store import JobStore, process_start_time
from corejob.job.kubeflow import MASTER

DEFAULT_GRACE_S = 30.0
START_FAILURE_EXIT_CODE = 127


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


def termination_grace_s(job: dict[str, Any]) -> float:
    """The Master pod's ``terminationGracePeriodSeconds`` (Kubernetes' default 30 s)."""
    master = job.get("spec", {}).get("pytorchReplicaSpecs", {}).get(MASTER, {})
    value = master.get("template", {}).get("spec", {}).get("terminationGracePeriodSeconds")
    return DEFAULT_GRACE_S if value is None else float(value)


class Supervisor:
    """Runs one job to completion (or cancellation), keeping ``job.json`` current."""

    def __init__(self, store: JobStore, name: str, runner: Runner, poll_s: float = 0.2) -> None:
        self.store = store
        self.name = name
        self.runner = runner
        self.poll_s = poll_s
        self.cancelled = False
        self.handles: dict[str, Handle] = {}
        self.cleaned_up: set[str] = set()
        self.log_sampler = LogSampler()

    def run(self) -> int:
        job = self.store.read_job(self.name)
        if job is None:
            print(f"corejob supervisor: no job {self.name!r} in {self.store.runs_dir}")
            return 1
        signal.signal(signal.SIGTERM, self._on_cancel)
        signal.signal(signal.SIGINT, self._on_cancel)
        self._record({})
        try:
            try:
                plans = {plan.replica_id: plan for plan in self.runner.plans(job)}
            except JobSpecError as error:
                status = set_condition(job.get("status") or {}, FAILED, str(error), timestamp())
                self.store.write_job(self.name, {**job, "status": status})
                return 2
            self._loop(job, plans)
        finally:
            self._kill_remaining()
            self.runner.close()
            self.log_sampler.sample(self.store.log_paths(self.name), time.time(), force=True)
        return 0

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
            print(f"{timestamp()} {rid} exited with code {code}", flush=True)
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
        with open(log_path, "ab") as log:
            if state.restarts:
                note = (
                    f"corejob: restart {state.restarts} of {plan.replica_id} "
                    f"(previous exit code {state.exit_code})\n"
                )
                log.write(note.encode())
                log.flush()
            try:
                self.handles[plan.replica_id] = self.runner.start(plan, log)
            except OSError as error:
                log.write(f"corejob: cannot start {plan.replica_id}: {error}\n".encode())
                return replace(
                    state, phase=FAILED, exit_code=START_FAILURE_EXIT_CODE, failed_at=None
                )
        print(f"{timestamp()} started {plan.replica_id} (attempt {state.restarts + 1})", flush=True)
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


def _make_runner(args: argparse.Namespace, store: JobStore) -> Runner:
    job_dir = store.job_dir(args.name)
    if args.runner == "container":
        from corejob.backends.container.runner import ContainerRunner

        return ContainerRunner(job_dir, store.claims_dir, args.name, engine=args.engine)
    from corejob.backends.local.processes import ProcessRunner

    return ProcessRunner(job_dir, store.claims_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m corejob.backends.local.supervisor")
    parser.add_argument("--runs-dir", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--runner", choices=["local", "container"], default="local")
    parser.add_argument("--engine", default=None)
    parser.add_argument("--detach", action="store_true")
    args = parser.parse_args(argv)
    if args.detach and os.fork() > 0:
        os._exit(0)  # the launcher returns at once; this child is reparented to init
    store = JobStore(args.runs_dir)
    try:
        return Supervisor(store, args.name, _make_runner(args, store)).run()
    except Exception:
        traceback.print_exc()
        job = store.read_job(args.name)
        if job is not None:
            message = f"the local supervisor crashed; see {store.job_dir(args.name)}/supervisor.log"
            status = set_condition(job.get("status") or {}, FAILED, message, timestamp())
            with contextlib.suppress(OSError):
                store.write_job(args.name, {**job, "status": status})
        return 1


if __name__ == "__main__":
    sys.exit(main())
