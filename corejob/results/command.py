"""``corejob results``: its options and what it does with them (the CLI only wires it in).

Kept here, beside the table it prints, so that ``corejob/cli.py`` stays a list of
commands; the backend and the job selector come from the CLI's common options.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

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


def run_results(args: argparse.Namespace, backend: Backend, selector: dict[str, str]) -> int:
    """Every run matching ``selector`` (live jobs and the backend's results ledger), as
    the table or ``-o json|yaml`` on stdout, plus the files asked for."""
    if args.min_steps < 0:
        raise UsageError("--min-steps must be >= 0")
    rows = collect(backend, selector)
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
