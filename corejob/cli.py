"""``corejob``: submit, track, sweep and collect training jobs on Kubernetes or locally.

Every command works on any backend (``--backend kubernetes|local|container``; default:
kubernetes when a kube context is configured, else local, announced in one line).

Exit codes: 0 ok · 1 unexpected error (rerun with --debug) · 2 usage/config/render error ·
3 no cluster configured · 4 unauthorized/forbidden · 5 training operator (PyTorchJob CRD)
not installed · 6 conflict · 7 rejected by the API server · 8 API unavailable after
retries · 9 job not found · 10 a job failed · 11 pending longer than --pending-timeout ·
130 interrupted.

``corejob list models|datasets`` names the bundled configs that -m/-d take.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

from corejob.backends import make_backend
from corejob.backends.base import Backend
from corejob.cli_parser import build_parser
from corejob.errors import (
    CorejobError,
    ExitCode,
    JobFailedError,
    JobNotFoundError,
    PendingTimeoutError,
    UsageError,
)
from corejob.job.spec import JobRequest, build_job, lint_job
from corejob.job.state import LABEL_SWEEP, JobState, summarize
from corejob.job.values import (
    ValueSources,
    backend_defaults,
    default_value_files,
    merge_values,
    values_from_sources,
)
from corejob.results.job_report import (
    failure_facts,
    failure_lines,
    job_record,
    records_text,
    widen_rows,
)
from corejob.results.status_table import (
    PENDING_STATES,
    format_rows,
    is_stuck,
    parse_duration,
    status_inputs,
    status_rows,
)
from corejob.submission import follow_logs, rerun_failed, wait_for

ALL_JOBS = {"app.kubernetes.io/name": "corejob"}


def value_sources(args: argparse.Namespace) -> ValueSources:
    """Site defaults first (corejob.job.values.default_value_files), then the command line."""
    files = (*default_value_files(os.environ, Path.cwd()), *args.values)
    return ValueSources(files, tuple(args.set_json), tuple(args.set), tuple(args.set_string))


def select_backend(args: argparse.Namespace) -> Backend:
    name = args.backend
    if name is None:
        from corejob.backends.kubernetes.config import cluster_configured

        name = "kubernetes" if cluster_configured(args.context) else "local"
        if name == "local":
            print("corejob: no kube context found: using the local backend", file=sys.stderr)
    if name == "kubernetes":
        return make_backend(name, namespace=args.namespace, context=args.context)
    return make_backend(name, runs_dir=Path(args.runs_dir))


def request_values(args: argparse.Namespace, backend: str | None) -> dict[str, Any]:
    """Chart values as a submit merges them: the backend's implied values, then the site
    defaults and the command line (Helm's order)."""
    return merge_values(backend_defaults(backend), values_from_sources(value_sources(args)))


def job_request(
    args: argparse.Namespace,
    model: str,
    dataset: str,
    sweep: str | None = None,
    backend: str | None = None,
) -> JobRequest:
    """What the user asked for; ``backend`` adds its implied values below theirs."""
    values = request_values(args, backend)
    return JobRequest(model, dataset, args.workers, args.gpus, args.image, sweep, values)


def with_flavor(request: JobRequest, backend: Backend) -> JobRequest:
    """The request with the ``apiFlavor`` the backend chooses when the values leave it open
    (a cluster with only Trainer v2 installed gets TrainJobs)."""
    configured = request.values.get("apiFlavor")
    flavor = backend.job_flavor(configured if isinstance(configured, str) else None)
    return dataclasses.replace(request, values={**request.values, "apiFlavor": flavor})


def duration_arg(text: str | None, flag: str) -> float | None:
    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as error:
        raise UsageError(f"{flag}: {error}") from None


def print_yaml(jobs: list[dict[str, Any]]) -> None:
    """Each job with the objects it owns (its ConfigMap): all that submit sends."""
    from corejob.job.render import objects_to_yaml

    print("---\n".join(objects_to_yaml(job) for job in jobs), end="")


def cmd_render(args: argparse.Namespace) -> int:
    request = job_request(args, args.model, args.dataset, backend=args.backend)
    print_yaml([build_job(request, args.namespace)])
    return ExitCode.OK


def lint(backend: Backend, job: dict[str, Any]) -> None:
    errors, warnings = lint_job(job, backend.node_gpus(), on_cluster=backend.namespace is not None)
    for warning in warnings:
        print(f"corejob: warning: {warning}", file=sys.stderr)
    if errors:
        raise UsageError("; ".join(errors))


def cmd_submit(args: argparse.Namespace) -> int:
    """Create the job. One that exists is reported, except a Failed one: that is deleted
    and created again (resuming from its checkpoints), unless --no-rerun."""
    pending_timeout = duration_arg(args.pending_timeout, "--pending-timeout")
    backend = select_backend(args)
    request = with_flavor(
        job_request(args, args.model, args.dataset, backend=backend.name), backend
    )
    job = build_job(request, backend.namespace)
    if args.dry_run:
        print_yaml([job])
        return ExitCode.OK
    lint(backend, job)
    outcome = backend.submit(job)
    if not (outcome.created or args.no_rerun) and outcome.summary.state == JobState.FAILED:
        outcome = rerun_failed(backend, job, outcome)
    where = f" in namespace {backend.namespace}" if backend.namespace else ""
    for note in outcome.notes:
        print(f"corejob: {note}", file=sys.stderr)
    if outcome.created:
        print(f"created job {outcome.name}{where} ({backend.name})")
    else:
        print(f"job {outcome.name} already exists{where} (state {outcome.summary.state}); "
              "not submitted again")  # fmt: skip
    if args.follow:
        follow_logs(backend, outcome.name)
    if args.wait or args.follow:
        return wait_for(backend, job, pending_timeout)
    return ExitCode.OK


def known_family(kind: str, name: str) -> str | None:
    """A config's trainer family; None for a path only the image has (the trainer decides)."""
    from trainer.configs.families import config_family
    from trainer.contract.errors import ConfigError

    try:
        return config_family(kind, name)
    except ConfigError:
        return None


def cmd_sweep(args: argparse.Namespace) -> int:
    from corejob.results.collect import collect
    from corejob.results.status_table import sweep_progress, sweep_rows
    from corejob.sweep.plan import grid, split_list, sweep_id
    from corejob.sweep.runner import SweepRun, run_sweep

    models, datasets = split_list(args.models), split_list(args.datasets)
    if not models or not datasets:
        raise UsageError("--models and --datasets each need at least one name (a,b,c)")
    if args.max_parallel < 1 or args.retries < 0:
        raise UsageError("--max-parallel must be >= 1 and --retries >= 0")
    key = [*value_sources(args).key(), f"w={args.workers}", f"g={args.gpus}", f"i={args.image}"]
    sweep = args.name or sweep_id(models, datasets, key)
    backend = select_backend(args)
    cells = grid(models, datasets, known_family)
    skipped = len(models) * len(datasets) - len(cells)
    if not cells:
        raise UsageError("no model x dataset pair of the same family (corejob list models)")
    if skipped:
        print(f"sweep: {skipped} model x dataset pair(s) of different families left out",
              file=sys.stderr)  # fmt: skip
    requests = {cell: with_flavor(job_request(args, cell.model, cell.dataset, sweep, backend.name),
                                  backend)
                for cell in cells}  # fmt: skip
    jobs = {cell: build_job(request, backend.namespace) for cell, request in requests.items()}
    if args.dry_run:
        print_yaml(list(jobs.values()))
        return ExitCode.OK
    lint(backend, next(iter(jobs.values())))
    print(f"sweep {sweep}: {len(jobs)} jobs, at most {args.max_parallel} at once", file=sys.stderr)
    run = SweepRun(sweep, jobs, args.max_parallel, args.retries)
    run.deletion_timeout_s = duration_arg(args.deletion_timeout, "--deletion-timeout") or 0.0
    progress = sweep_progress(run, backend, args.poll)  # per-cell lines as records appear
    views = run_sweep(run, backend, poll_s=args.poll, on_progress=progress)
    print(format_rows(sweep_rows(views)))
    collect(backend, {LABEL_SWEEP: sweep})  # every finished cell into the results ledger
    failed = [view.name for view in views if view.state != JobState.SUCCEEDED]
    if failed:
        raise JobFailedError(f"sweep {sweep}: {len(failed)} job(s) did not succeed: "
                             f"{', '.join(failed)}")  # fmt: skip
    return ExitCode.OK


def selected_jobs(backend: Backend, job: str | None, sweep: str | None) -> list[dict[str, Any]]:
    if job:
        found = backend.get(job)
        if found is None:
            raise JobNotFoundError(f"job {job} not found")
        return [found]
    return backend.list({LABEL_SWEEP: sweep} if sweep else ALL_JOBS)


def cmd_status(args: argparse.Namespace) -> int:
    backend = select_backend(args)
    timeout = duration_arg(args.pending_timeout, "--pending-timeout")
    jobs = selected_jobs(backend, args.job, args.sweep)
    if not jobs and args.output in ("table", "wide"):
        print("no jobs")
        return ExitCode.OK
    results, progress = status_inputs(backend, jobs)
    summaries = [summarize(job) for job in jobs]
    held = (*PENDING_STATES, JobState.SUSPENDED)
    why = {s.name: backend.explain(s.name) for s in summaries if s.state in held}
    failures = {
        s.name: failure_facts(backend, s.name) for s in summaries if s.state == JobState.FAILED
    }
    if args.output in ("json", "yaml"):
        records = [
            job_record(job, results.get(name), progress.get(name), why.get(name, []),
                       failures.get(name))
            for job, name in ((job, summarize(job).name) for job in jobs)
        ]  # fmt: skip
        print(records_text(records, args.output), end="")
    else:
        rows = status_rows(jobs, results, progress)
        if args.output == "wide":
            rows = widen_rows(rows, jobs, failures)
        print(format_rows(rows))
        for summary in summaries:
            for reason in why.get(summary.name, []):
                print(f"  {summary.name}: {reason}")
            if summary.name in failures:
                print(f"  {summary.name}: failed: {summary.reason}: {summary.message}")
                for line in failure_lines(summary.name, failures[summary.name]):
                    print(line)
            elif summary.state == JobState.DELETING:
                print(f"  {summary.name}: {summary.message} (its pods are still terminating)")
    stuck = [s.name for s in summaries if is_stuck(s, timeout)]
    if stuck:
        raise PendingTimeoutError(f"pending longer than {args.pending_timeout}: {', '.join(stuck)}")
    return ExitCode.OK


def cmd_logs(args: argparse.Namespace) -> int:
    backend = select_backend(args)
    since = duration_arg(args.since, "--since")
    lines = backend.logs(args.job, args.replica, args.all, args.follow,
                         int(since) if since else None, args.tail)  # fmt: skip
    for line in lines:
        print(line, flush=args.follow)
    return ExitCode.OK


def cmd_cancel(args: argparse.Namespace) -> int:
    if not args.jobs and not args.sweep:
        raise UsageError("name the jobs to cancel, or --sweep S")
    backend = select_backend(args)
    names = list(args.jobs)
    if args.sweep:
        names += [job["metadata"]["name"] for job in backend.list({LABEL_SWEEP: args.sweep})]
    deleted = [name for name in names if backend.cancel(name)]
    for name in deleted:
        print(f"deleted job {name}")
    missing = sorted(set(names) - set(deleted))
    if missing:
        raise JobNotFoundError(f"not found: {', '.join(missing)}")
    if not deleted:
        print(f"sweep {args.sweep} has no jobs")
    return ExitCode.OK


def cmd_list(args: argparse.Namespace) -> int:
    from corejob.catalog import run_list

    return run_list(args)


def cmd_results(args: argparse.Namespace) -> int:
    from corejob.results.command import run_results

    selector = {LABEL_SWEEP: args.sweep} if args.sweep else ALL_JOBS
    if not args.from_claim and (args.values or args.set_json or args.set or args.set_string):
        raise UsageError("results: -f/--set* describe your jobs' pods for --from-claim; "
                         "add --from-claim or leave them out")  # fmt: skip
    backend = select_backend(args)
    values = None
    if args.from_claim:
        values = request_values(args, backend.name)
    return run_results(args, backend, selector, values)


def cmd_plot(args: argparse.Namespace) -> int:
    from corejob.results.curves import run_plot

    return run_plot(args, select_backend(args))


COMMANDS = {"submit": cmd_submit, "sweep": cmd_sweep, "status": cmd_status, "logs": cmd_logs,
            "cancel": cmd_cancel, "results": cmd_results, "render": cmd_render,
            "list": cmd_list, "plot": cmd_plot}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = build_parser(__doc__ or "").parse_args(argv)
    try:
        return int(COMMANDS[args.command](args))
    except KeyboardInterrupt:
        print("corejob: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except CorejobError as error:
        if args.debug:
            raise
        print(f"corejob: error: {error}", file=sys.stderr)
        return int(error.exit_code)
    except Exception as error:
        if args.debug:
            raise
        print(f"corejob: unexpected error: {type(error).__name__}: {error} "
              "(rerun with --debug and report it)", file=sys.stderr)  # fmt: skip
        return ExitCode.ERROR


if __name__ == "__main__":
    sys.exit(main())
