"""``corejob results``: its options and what it does with them (the CLI only wires it in).

Kept here, beside the table it prints, so that ``corejob/cli.py`` stays a list of
commands; the backend and the job selector come from the CLI's common options.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from corejob.backends.base import Backend
from corejob.errors import ExitCode, UsageError
from corejob.results import output
from corejob.results.collect import collect
from corejob.results.heatmap import PLOT_METRICS, plot_files, plot_heatmap
from corejob.results.table import DEFAULT_MIN_STEPS, build_table, render_text


def add_results_options(parser: argparse.ArgumentParser) -> None:
    """Which runs, how to print them, what to write."""
    parser.add_argument("--sweep", help="only this sweep's jobs")
    parser.add_argument(
        "--all", action="store_true", help="every run of a cell (default: the latest, counted)"
    )
    parser.add_argument(
        "--min-steps",
        type=int,
        default=DEFAULT_MIN_STEPS,
        metavar="N",
        help=f"mark runs of fewer training steps under-trained (default {DEFAULT_MIN_STEPS})",
    )
    parser.add_argument(
        "-o",
        "--output",
        choices=["table", "json", "yaml"],
        default="table",
        help="print the table (default) or the rows as JSON / YAML",
    )
    parser.add_argument("--csv", type=Path, help="write the rows as CSV")
    parser.add_argument("--json", type=Path, help="write the rows as JSON")
    parser.add_argument(
        "--plot",
        nargs="?",
        const="",
        metavar="PATH",
        help="write a heatmap PNG (no PATH: results-<sweep>.png, one per sweep)",
    )
    parser.add_argument(
        "--plot-metric",
        choices=list(PLOT_METRICS),
        default="best",
        help="heatmap of best or final val bits/spike, or ratio (final / oracle)",
    )
    parser.add_argument(
        "--from-claim",
        action="store_true",
        help="kubernetes: first read every /runs/*/result.json on the checkpoints claim "
        "through a short-lived pod (the trainer image, user and placement of your jobs, "
        "from the site defaults and -f/--set below) and record the runs the ledger misses, "
        "e.g. jobs their TTL deleted before any corejob command saw them",
    )
    parser.add_argument(
        "--claim-timeout",
        default="5m",
        metavar="DURATION",
        help="with --from-claim: give up on the reader pod after this long",
    )


def run_results(
    args: argparse.Namespace,
    backend: Backend,
    selector: dict[str, str],
    values: dict[str, Any] | None = None,
) -> int:
    """Every run matching ``selector`` (live jobs and the backend's results ledger), as
    the table or ``-o json|yaml`` on stdout, plus the files asked for. ``--from-claim``
    first adds the runs only the checkpoints claim still knows (``values``: the chart
    values the jobs were submitted with)."""
    if args.min_steps < 0:
        raise UsageError("--min-steps must be >= 0")
    extra = read_claim_runs(args, backend, values or {}) if args.from_claim else []
    rows = collect(backend, selector, extra)
    entries = build_table(rows, args.min_steps, args.all)
    if args.output == "json":
        print(output.to_json(entries), end="")
    elif args.output == "yaml":
        print(output.to_yaml(entries), end="")
    else:
        print(render_text(entries, args.min_steps, args.all))
    for path, write in ((args.csv, output.write_csv), (args.json, output.write_json)):
        if path:
            write(entries, path)
            print(f"wrote {path}", file=sys.stderr)
    if args.plot is not None and not rows:
        print("no results to plot", file=sys.stderr)
    elif args.plot is not None:
        for path, group in plot_files(rows, Path(args.plot) if args.plot else None).items():
            plot_heatmap(group, path, args.plot_metric, args.min_steps)
            print(f"wrote {path}", file=sys.stderr)
    return ExitCode.OK


def read_claim_runs(
    args: argparse.Namespace, backend: Backend, values: dict[str, Any]
) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """The runs on the cluster's checkpoints claim that the ledger missed, recorded now
    (and returned, so the table shows them even where the ledger cannot be written)."""
    from corejob.backends.kubernetes.backend import KubernetesBackend
    from corejob.backends.kubernetes.ledger import claim
    from corejob.job.spec import job_pod_spec
    from corejob.results.status_table import parse_duration

    if not isinstance(backend, KubernetesBackend):
        raise UsageError(
            f"--from-claim reads a cluster's checkpoints claim; the {backend.name} backend "
            "keeps every run directory on this machine and its records under <runs dir>/"
            "_results already"
        )
    try:
        timeout_s = parse_duration(args.claim_timeout)
    except ValueError as error:
        raise UsageError(f"--claim-timeout: {error}") from None
    pod = job_pod_spec(values, backend.namespace)

    def say(line: str) -> None:
        print(f"corejob: {line}", file=sys.stderr)

    name, reading = claim.read_claim(backend.api, pod, timeout_s, say)
    found = claim.import_records(reading, backend.ledger, backend.list())
    claim.report(found, name)
    return found.added
