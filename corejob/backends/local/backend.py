"""The ``local`` backend: a rendered PyTorchJob run as processes on this machine.

``submit`` stores the job under the runs directory with a ``Created`` condition and
starts a detached supervisor (:mod:`corejob.backends.local.supervisor`) that plays the operator;
every other operation reads the store, so ``status``/``logs``/``results``/``cancel``
work from any shell, during the run and after the submitting CLI has exited.

A supervisor that is gone without finishing its job (killed, crashed, out of disk) is
noticed by whoever reads the job next (its watchdog first): that reader stops whatever
the supervisor left running and only then records the job Failed with the reason, so
``status`` never says Failed while a replica still runs.
"""

from __future__ import annotations

import contextlib
import copy
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from corejob.backends.base import PollingTracker, SubmitOutcome
from corejob.backends.local.log_index import offset_of_last_lines, offset_since
from corejob.backends.local.operator_env import JobSpecError
from corejob.backends.local.policy import FAILED, is_finished, set_condition
from corejob.backends.local.processes import stop_leftovers
from corejob.backends.local.replicas import (
    config_map_files,
    replica_count,
    replica_plans,
    replica_specs_of,
)
from corejob.backends.local.store import JobStore, process_alive
from corejob.backends.local.supervisor import failure_message, termination_grace_s, timestamp
from corejob.errors import CorejobError, JobNotFoundError, UnavailableError, UsageError
from corejob.job.flavors import DEFAULT_FLAVOR
from corejob.job.shipped.owned import owned_objects
from corejob.job.state import labels_match, summarize
from trainer.contract.result import (
    CPU_OVERSUBSCRIBED,
    parse_result_line,
    parse_result_record,
    result_record,
)

LAUNCH_TIMEOUT_S = 30.0
FOLLOW_POLL_S = 0.5


class LocalBackend:
    """Runs jobs as local processes; state lives in ``runs_dir``."""

    name = "local"
    runner = "local"
    namespace = None  # jobs live in runs_dir, not in a namespace

    def __init__(self, runs_dir: Path | str = Path("runs")) -> None:
        self.store = JobStore(Path(runs_dir).absolute())

    # -- submit -----------------------------------------------------------------------
    def submit(self, job: dict[str, Any]) -> SubmitOutcome:
        name = job.get("metadata", {}).get("name")
        if not name:
            raise UsageError("job has no metadata.name; render it with corejob.job.render first")
        with self.store.submit_lock(name):  # two shells submitting at once start one job
            existing = self._reconciled(name)
            if existing is not None:
                return SubmitOutcome(name=name, created=False, summary=summarize(existing))
            self.check(job)
            record = self._created_record(job)
            try:
                self.store.remove_record(name)  # a stale supervisor.json is not this job's
                self.store.reset_logs(name)
                self.store.write_job(name, record)
                copies = {}  # directory → the files in it
                for obj in owned_objects(job):
                    files = config_map_files(job, obj)
                    where = self.store.write_config_map(name, obj["metadata"]["name"], files)
                    copies[where] = sorted(files)
            except OSError as error:
                raise UnavailableError(
                    f"cannot write job {name}'s files ({error.strerror}: {error.filename}); "
                    "free space or fix the runs directory, then submit again"
                ) from None
            self._launch_supervisor(name)
        notes = tuple(f"copied {', '.join(files)} into job {name}'s volume: {where}"
                      for where, files in copies.items())  # fmt: skip
        return SubmitOutcome(name=name, created=True, summary=summarize(record), notes=notes)

    def check(self, job: dict[str, Any]) -> None:
        """Fail before anything starts when the job cannot run here (one-line error)."""
        try:
            plans = replica_plans(
                job, master_addr="127.0.0.1", master_port=0, cpu_count=1, host_environ=os.environ
            )
        except JobSpecError as error:
            raise UsageError(f"job {job['metadata']['name']}: {error}") from None
        if any(plan.command is None for plan in plans) and find_spec("trainer") is None:
            raise UsageError(
                "the trainer is not installed in this Python environment, so the image's "
                "entrypoint cannot run locally: pip install 'corejob[trainer]', "
                "or use --backend container"
            )

    def _created_record(self, job: dict[str, Any]) -> dict[str, Any]:
        record = copy.deepcopy(job)
        name = record["metadata"]["name"]
        now = timestamp()
        record["metadata"].setdefault("namespace", "local")
        record["metadata"]["creationTimestamp"] = now
        record["metadata"]["uid"] = str(uuid.uuid4())
        kind = str(job.get("kind") or "PyTorchJob")
        record["status"] = set_condition(
            {}, "Created", f"{kind} {name} is created.", now, job_kind=kind
        )
        return record

    def _supervisor_command(self, name: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "corejob.backends.local.supervisor",
            "--runs-dir",
            str(self.store.runs_dir),
            "--name",
            name,
            "--runner",
            self.runner,
            "--detach",
        ]

    def _launch_supervisor(self, name: str) -> None:
        """Start the supervisor; returns once it is on record, or fails with its reason
        (then the job is forgotten: nothing runs, and the name is free again)."""
        log_path = self.store.job_dir(name) / "supervisor.log"
        launcher = subprocess.Popen(
            self._supervisor_command(name),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=self.store.runs_dir,
        )
        try:
            output, _ = launcher.communicate(timeout=LAUNCH_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            launcher.kill()
            raise CorejobError(
                f"the local supervisor of job {name} did not start within "
                f"{LAUNCH_TIMEOUT_S:.0f} s; see {log_path}"
            ) from None
        if launcher.returncode != 0:
            self.store.remove_record(name)
            lines = output.decode(errors="replace").strip().splitlines() or [f"see {log_path}"]
            raise CorejobError(f"could not start the local supervisor of job {name}: {lines[-1]}")

    # -- read -------------------------------------------------------------------------
    def get(self, name: str) -> dict[str, Any] | None:
        job = self.store.read_job(name)
        if job is None or is_finished(job.get("status") or {}) or not self._supervisor_gone(name):
            return job
        with contextlib.ExitStack() as stack:
            try:
                if not stack.enter_context(self.store.submit_lock(name, wait=False)):
                    return job  # another process is stopping the replicas: still running
            except OSError:
                pass  # no lock file and no room for one: reconcile unlocked
            return self._reconciled(name)

    def _supervisor_gone(self, name: str) -> bool:
        """True when the job's supervisor stopped (or failed) without finishing it."""
        record = self.store.read_supervisor(name)
        if record is None:  # not started yet, or failed before it could record itself
            return self.store.read_failure_note(name) is not None
        return not process_alive(record.get("pid"), record.get("start_time"))

    def _reconciled(self, name: str) -> dict[str, Any] | None:
        """The job; if its supervisor is gone without finishing it, first stop what the
        supervisor left running, then record the job Failed with the supervisor's reason.
        Call with the job's lock held."""
        job = self.store.read_job(name)
        if job is None or is_finished(job.get("status") or {}) or not self._supervisor_gone(name):
            return job
        record = self.store.read_supervisor(name) or {}
        self._kill_leftovers(name, record, termination_grace_s(job))
        status = set_condition(
            job.get("status") or {}, FAILED, self._end_message(name, record), timestamp()
        )
        if status.get("replicaStatuses"):  # stopped: like deleted pods, counted nowhere
            counts = status["replicaStatuses"].items()
            status = {**status, "replicaStatuses": {r: {**c, "active": 0} for r, c in counts}}
        job = {**job, "status": status}
        with contextlib.suppress(OSError):  # a full disk: every reader reconciles again
            self.store.write_job(name, job)
        return job

    def _end_message(self, name: str, record: dict[str, Any]) -> str:
        note = self.store.read_failure_note(name)
        if note and (not record or note.get("pid") == record.get("pid")):
            return failure_message(note.get("pid"), str(note.get("reason")))
        log = self.store.job_dir(name) / "supervisor.log"
        return (
            f"the local supervisor (pid {record.get('pid')}) is gone, killed or lost in a "
            f"restart; its replicas were stopped; see {log}"
        )

    def list(self, selector: dict[str, str] | None = None) -> list[dict[str, Any]]:
        jobs = []
        for name in self.store.names():
            job = self.get(name)
            labels = (job or {}).get("metadata", {}).get("labels") or {}
            if job and all(labels.get(k) == v for k, v in (selector or {}).items()):
                jobs.append(job)
        return jobs

    def _require(self, name: str) -> dict[str, Any]:
        job = self.get(name)
        if job is None:
            raise JobNotFoundError(f"job {name} not found in {self.store.runs_dir}")
        return job

    def logs(
        self,
        name: str,
        replica: str | None = None,
        all_replicas: bool = False,
        follow: bool = False,
        since_seconds: int | None = None,
        tail: int | None = None,
    ) -> Iterator[str]:
        """Replica log lines (master-0 by default); ``since_seconds`` cuts by write time
        (:mod:`corejob.backends.local.log_index`), ``tail`` reads the file from its end."""
        self._require(name)
        paths = self._log_selection(name, replica, all_replicas)
        prefixed = all_replicas or len(paths) > 1
        offsets = dict.fromkeys(paths, 0)
        if since_seconds is not None:
            cutoff = time.time() - since_seconds
            offsets = {p: offset_since(p, cutoff) if p.exists() else 0 for p in paths}
        if tail is not None:  # both: the last lines of those written since
            offsets = {p: max(o, offset_of_last_lines(p, tail)) if p.exists() else 0
                       for p, o in offsets.items()}  # fmt: skip
        while True:
            for path in paths:
                for line in self._read_new_lines(path, offsets):
                    yield f"[{path.stem}] {line}" if prefixed else line
            if not follow or self._finished_or_gone(name):
                break
            time.sleep(FOLLOW_POLL_S)
        for path in paths:  # whatever was written between the last read and the end
            for line in self._read_new_lines(path, offsets, final=True):
                yield f"[{path.stem}] {line}" if prefixed else line

    def _log_selection(self, name: str, replica: str | None, all_replicas: bool) -> list[Path]:
        if all_replicas:
            return self.store.log_paths(name)
        replica = (replica or "master-0").lower()
        if "-" not in replica:
            replica = f"{replica}-0"
        path = self.store.log_path(name, replica)
        if not path.exists() and not self._replica_exists(name, replica):
            raise UsageError(f"job {name} has no replica {replica!r} (try master-0, worker-0)")
        return [path]

    def _replica_exists(self, name: str, replica: str) -> bool:
        """From the job's spec: a replica's log appears only once it has started."""
        job = self.store.read_job(name) or {}
        try:
            roles = replica_specs_of(job)
        except JobSpecError:
            return False
        ids = {f"{role.lower()}-{i}" for role, spec in roles for i in range(replica_count(spec))}
        return replica in ids

    @staticmethod
    def _read_new_lines(path: Path, offsets: dict[Path, int], final: bool = False) -> list[str]:
        try:
            with open(path, "rb") as handle:
                handle.seek(offsets[path])
                data = handle.read()
        except FileNotFoundError:
            return []
        end = len(data) if final else data.rfind(b"\n") + 1
        offsets[path] += end
        return [line for line in data[:end].decode(errors="replace").splitlines()]

    def _finished_or_gone(self, name: str) -> bool:
        job = self.get(name)
        if job is None or not is_finished(job.get("status") or {}):
            return job is None
        record = self.store.read_supervisor(name) or {}
        return not process_alive(record.get("pid"), record.get("start_time"))

    def result(self, name: str) -> dict[str, Any] | None:
        """The last ``COREJOB_RESULT`` line of the master's log, parsed; a finished job's
        result also goes to the ledger (``_results/<job>.json``), which outlives the job."""
        job = self.store.read_job(name)
        path = self.store.log_path(name, "master-0")
        if job is None or not path.exists():
            return None
        with open(path, errors="replace") as handle:
            result = parse_result_line(handle)
        cpu = (self.store.read_supervisor(name) or {}).get("cpu") or {}
        if result is not None and cpu.get("oversubscribed"):
            result = {**result, CPU_OVERSUBSCRIBED: True}
        if result is not None and summarize(job).state.finished:
            self._record_result(job, result)
        return result

    def _record_result(self, job: dict[str, Any], result: dict[str, Any]) -> None:
        """Keep the job's identity (labels, creation time, final state) and its result, so
        ``corejob results`` still lists it after ``cancel``. Written only when it changed;
        a full or read-only disk loses the copy, never the answer."""
        record = result_record(job, result)
        name = (job.get("metadata") or {}).get("name", "")
        if name and self.store.read_result_record(name) != record:
            with contextlib.suppress(OSError):
                self.store.write_result_record(name, record)

    def keep_result(self, job: dict[str, Any], result: dict[str, Any] | None) -> None:
        """Nothing to do: :meth:`result` already kept what a finished job printed; a
        failed run without a result stays a live row until cancelled (its log says why)."""

    def recorded_results(
        self, selector: dict[str, str] | None = None
    ) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
        """(job, result) of every job in the ledger, live or since cancelled."""
        pairs = []
        for record in self.store.result_records():
            parsed = parse_result_record(record)
            if parsed is not None and parsed[1] is not None and labels_match(parsed[0], selector):
                pairs.append(parsed)
        return pairs

    # -- cancel -----------------------------------------------------------------------
    def cancel(self, name: str) -> bool:
        """Stop the supervisor and every replica (whole process groups), then forget the job
        (a finished job's result stays in the ledger, see :meth:`result`)."""
        if self.store.read_job(name) is None:
            return False
        with self.store.submit_lock(name):
            job = self.store.read_job(name)
            if job is None:
                return False
            if summarize(job).state.finished:
                self.result(name)  # into the ledger before the job is forgotten
            record = self.store.read_supervisor(name) or {}
            pid, start = record.get("pid"), record.get("start_time")
            if process_alive(pid, start):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + termination_grace_s(job) + 10
                while process_alive(pid, start) and time.monotonic() < deadline:
                    time.sleep(0.1)
            self._kill_leftovers(name, record, grace_s=0.0)
            self.store.remove_record(name)
        return True

    def _kill_leftovers(self, name: str, record: dict[str, Any], grace_s: float) -> None:
        """Stop whatever a dead or unresponsive supervisor left running (the container
        backend also removes the job's containers)."""
        stop_leftovers(record, grace_s)

    def explain(self, name: str) -> list[str]:
        """Why the job is not (or no longer) running, from the supervisor's replica table."""
        job = self._require(name)
        record = self.store.read_supervisor(name)
        if record is None:
            return ["the local supervisor has not started yet"]
        queued = (record.get("cpu") or {}).get("queued")
        reasons = [queued] if queued else []
        for rid, entry in sorted((record.get("replicas") or {}).items()):
            phase, code = entry.get("phase"), entry.get("exit_code")
            if phase == "Pending" and entry.get("restarts"):
                reasons.append(
                    f"{rid} waits to restart with its gang (attempt {entry['restarts'] + 1})"
                )
            elif phase == "Failed":
                reasons.append(
                    f"{rid} exited with code {code}; see `corejob logs {name} --replica {rid}`"
                )
        if not reasons and not is_finished(job.get("status") or {}):
            reasons.append("all replicas are running")
        return reasons

    # -- tracking and cluster facts -----------------------------------------------------
    def track(self, selector: dict[str, str], poll_s: float = 2.0) -> PollingTracker:
        """Polls the store: reading a few JSON files is cheap, and there is no event feed."""
        return PollingTracker(self, selector, poll_s)

    def exit_codes(self, name: str) -> list[int]:
        """Non-zero exit codes the supervisor recorded for the job's replicas."""
        record = self.store.read_supervisor(name) or {}
        codes = [entry.get("exit_code") for entry in (record.get("replicas") or {}).values()]
        return [int(code) for code in codes if code]

    def job_flavor(self, configured: str | None) -> str:
        """Both flavours run here; the chart's default unless one is asked for."""
        return configured or DEFAULT_FLAVOR

    def node_gpus(self) -> list[int] | None:
        """Unknown: this machine is not a cluster node the chart's GPU requests apply to."""
        return None
