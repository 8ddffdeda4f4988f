"""This machine's CPU cores, shared fairly by local and container jobs.

Why: every local job sizes its processes' threads to the whole machine (``OMP_NUM_THREADS``
= cores / processes). Two such jobs at once — a sweep with ``--max-parallel 2`` — run
4 threads on 2 cores: each step takes several times longer, time-budgeted runs stop after
a few batches and report ~0 bits/spike as if it were a result. So a job's supervisor asks
this ledger for its cores before it starts any replica and queues (saying so in the job's
status) until they are free, first come, first served. A job that needs more cores than
the machine has (more processes than cores) runs alone and is marked oversubscribed.

The ledger is one JSON file under the runs directory, read and written under an exclusive
``flock``; entries of processes that no longer exist (a killed supervisor) are dropped on
every read, so a crash never leaves cores held. :func:`admission` is the pure rule.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from corejob.backends.local.store import atomic_write_json, process_alive, process_start_time

CORES_ENV = "COREJOB_LOCAL_CORES"  # override the cores local jobs may use (tests, shared hosts)


def core_capacity(environ: dict[str, str] | None = None) -> int:
    """Cores local jobs may use: ``COREJOB_LOCAL_CORES`` or the cores this process may run on."""
    env = os.environ if environ is None else environ
    value = env.get(CORES_ENV, "").strip()
    if value:
        try:
            cores = int(value)
        except ValueError:
            cores = 0
        if cores < 1:
            raise ValueError(f"{CORES_ENV}={value!r}: expected a whole number of cores >= 1")
        return cores
    return len(os.sched_getaffinity(0)) or 1


def threads_per_process(processes: int, capacity: int) -> int:
    """Intra-op threads for each of a job's ``processes`` so that together they fill its cores."""
    return max(1, capacity // max(1, processes))


def cores_needed(processes: int, capacity: int) -> int:
    """Cores a job of ``processes`` occupies (processes × threads; may exceed ``capacity``)."""
    return max(1, processes) * threads_per_process(processes, capacity)


@dataclass(frozen=True)
class Claim:
    """One job's place in the ledger: holding cores, or waiting for them."""

    job: str
    cores: int
    pid: int
    start_time: str | None
    since: float


@dataclass(frozen=True)
class Admission:
    admitted: bool
    message: str  # why it waits (empty when admitted)


def admission(claim: Claim, holders: list[Claim], waiters: list[Claim], capacity: int) -> Admission:
    """Whether ``claim`` may start now: its cores fit beside the holders (or nothing runs),
    and no job that has waited longer is still waiting (first come, first served)."""
    earlier = [w for w in waiters if (w.since, w.job) < (claim.since, claim.job)]
    in_use = sum(h.cores for h in holders)
    if not earlier and (not holders or in_use + claim.cores <= capacity):
        return Admission(True, "")
    running = ", ".join(f"{h.job} ({h.cores})" for h in holders) or "none"
    ahead = f"; {len(earlier)} job(s) queued ahead" if earlier else ""
    return Admission(
        False,
        f"queued for CPU: needs {claim.cores} of {capacity} cores, {in_use} in use by "
        f"{running}{ahead}",
    )


class CoreLedger:
    """The shell around :func:`admission`: ``cores.json`` under ``runs/_local``."""

    def __init__(self, runs_dir: Path | str, capacity: int | None = None) -> None:
        self.dir = Path(runs_dir) / "_local"
        self.capacity = core_capacity() if capacity is None else capacity

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, list[Claim]]]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "cores.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            ledger = self._read()
            yield ledger
            atomic_write_json(
                self.dir / "cores.json",
                {key: [asdict(c) for c in claims] for key, claims in ledger.items()},
            )

    def _read(self) -> dict[str, list[Claim]]:
        try:
            raw = json.loads((self.dir / "cores.json").read_text())
        except (OSError, ValueError):
            raw = {}
        ledger: dict[str, list[Claim]] = {}
        for key in ("holders", "waiters"):
            claims = []
            for entry in raw.get(key, []) if isinstance(raw, dict) else []:
                with contextlib.suppress(TypeError):
                    claim = Claim(**entry)
                    if process_alive(claim.pid, claim.start_time):
                        claims.append(claim)
            ledger[key] = claims
        return ledger

    def try_acquire(self, job: str, cores: int, since: float) -> Admission:
        """One attempt: take the cores if :func:`admission` allows, else stay queued."""
        pid = os.getpid()
        claim = Claim(job, cores, pid, process_start_time(pid), since)
        with self._locked() as ledger:
            holders = [c for c in ledger["holders"] if c.job != job]
            waiters = [c for c in ledger["waiters"] if c.job != job]
            decision = admission(claim, holders, waiters, self.capacity)
            if decision.admitted:
                ledger["holders"], ledger["waiters"] = [*holders, claim], waiters
            else:
                ledger["holders"], ledger["waiters"] = holders, [*waiters, claim]
        return decision

    def acquire(
        self,
        job: str,
        cores: int,
        stop: Callable[[], bool],
        on_wait: Callable[[str], None],
        poll_s: float = 0.5,
    ) -> bool:
        """Block until the cores are ours (True) or ``stop()`` says give up (False).

        ``on_wait`` hears each new reason for waiting (not every poll)."""
        since, said = time.time(), ""
        while True:
            decision = self.try_acquire(job, cores, since)
            if decision.admitted:
                return True
            if decision.message != said:
                said = decision.message
                on_wait(said)
            if stop():
                self.release(job)
                return False
            time.sleep(poll_s)

    def release(self, job: str) -> None:
        """Give the job's cores (or its place in the queue) back."""
        with self._locked() as ledger:
            ledger["holders"] = [c for c in ledger["holders"] if c.job != job]
            ledger["waiters"] = [c for c in ledger["waiters"] if c.job != job]

    def holders(self) -> list[Claim]:
        with self._locked() as ledger:
            return list(ledger["holders"])
