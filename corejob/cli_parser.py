"""The ``corejob`` command line: every subcommand's options (the commands are in
``corejob.cli``). Helm's value options keep Helm's names, meaning and order."""

from __future__ import annotations

import argparse
import functools

from corejob import __version__
from corejob.cli_help import DefaultsHelpFormatter
from trainer.contract.flag_types import positive_int


def job_options(parser: argparse.ArgumentParser, grid: bool = False) -> None:
    if grid:
        parser.add_argument("--models", required=True, help="comma-separated model configs")
        parser.add_argument("--datasets", required=True, help="comma-separated dataset configs")
    else:
        parser.add_argument("--model", "-m", required=True, help="model config (e.g. res_small)")
        parser.add_argument("--dataset", "-d", default="synthetic_mixed", help="dataset config")
    parser.add_argument("--workers", type=int, help="worker replicas besides the master")
    parser.add_argument("--gpus", type=int, help="GPUs per replica (nvidia.com/gpu)")
    parser.add_argument("--image", help="trainer image (default localhost/corejob-trainer:<v>)")
    values_options(parser)
    parser.add_argument("--dry-run", action="store_true", help="print the job(s), submit nothing")


def values_options(parser: argparse.ArgumentParser) -> None:
    """Helm's value options, with Helm's meaning and order (corejob.job.values)."""
    group = parser.add_argument_group("chart values (as in helm install; later wins)")
    group.add_argument("-f", "--values", action="append", default=[], metavar="FILE",
                       help="values YAML file (repeatable)")  # fmt: skip
    group.add_argument("--set-json", action="append", default=[], metavar="KEY=JSON",
                       help='e.g. trainer.extraArgs=\'["--seed","3"]\'')  # fmt: skip
    group.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="e.g. trainer.maxEpochs=5,trainer.extraArgs={--seed,3}")  # fmt: skip
    group.add_argument("--set-string", action="append", default=[], metavar="KEY=VALUE",
                       help="values stay strings, e.g. nodeSelector.rev=2")  # fmt: skip


def build_parser(description: str) -> argparse.ArgumentParser:
    """The whole ``corejob`` parser; ``description`` is the CLI's module docstring."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--backend", choices=["kubernetes", "local", "container"])
    common.add_argument("--namespace", "-n", help="namespace (default: the context's)")
    common.add_argument("--context", help="kubeconfig context (default: the current one)")
    common.add_argument("--runs-dir", default="runs", help="local backends' run directory")
    common.add_argument("--debug", action="store_true", help="tracebacks on errors")
    parser = argparse.ArgumentParser(
        prog="corejob", description=description, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"corejob {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    commands = functools.partial(subparsers.add_parser, formatter_class=DefaultsHelpFormatter)

    submit = commands("submit", parents=[common], help="submit one training job")
    job_options(submit)
    submit.add_argument("--wait", action="store_true", help="wait until the job finishes")
    submit.add_argument("--follow", action="store_true", help="stream the master's log")
    submit.add_argument("--pending-timeout", help="with --wait: give up pending after (15m)")
    submit.add_argument(
        "--no-rerun", action="store_true", help="report a failed job instead of running it again"
    )

    sweep = commands("sweep", parents=[common], help="one job per model × dataset")
    job_options(sweep, grid=True)
    sweep.add_argument("--max-parallel", type=int, default=2, help="jobs running at once")
    sweep.add_argument("--retries", type=int, default=1, help="retries of retryable failures")
    sweep.add_argument("--name", help="sweep id (default: derived from the grid)")
    sweep.add_argument("--deletion-timeout", default="10m",
                       help="a retry waits this long for the failed job's deletion")  # fmt: skip
    sweep.add_argument("--poll", type=float, default=2.0, help=argparse.SUPPRESS)

    status = commands("status", parents=[common], help="table of jobs")
    status.add_argument("job", nargs="?", help="one job (default: all corejob jobs)")
    status.add_argument("--sweep", help="only this sweep's jobs")
    status.add_argument("--pending-timeout", help="flag jobs pending longer (e.g. 15m)")
    status.add_argument("-o", "--output", choices=["table", "wide", "json", "yaml"],
                        default="table", help="wide: + sweep, config hash, exit codes")  # fmt: skip

    logs = commands("logs", parents=[common], help="logs of a job")
    logs.add_argument("job")
    logs.add_argument("--all", action="store_true", help="all replicas, rank-prefixed")
    logs.add_argument("--follow", "-f", action="store_true")
    logs.add_argument("--since", help="only newer lines (e.g. 10m)")
    logs.add_argument("--replica", help="master-0 (default) or worker-<N>")
    logs.add_argument("--tail", type=positive_int, metavar="N", help="only the last N lines")

    cancel = commands("cancel", parents=[common], help="delete jobs")
    cancel.add_argument("jobs", nargs="*")
    cancel.add_argument("--sweep", help="every job of this sweep")

    results = commands("results", parents=[common], help="val bits/spike per cell")
    from corejob.results.command import add_results_options

    add_results_options(results)
    values_options(results)  # --from-claim: the values the jobs were submitted with

    from corejob.results.curves import add_plot_options

    add_plot_options(commands("plot", parents=[common], help="training curves of a job (PNG)"))

    render = commands("render", parents=[common], help="print the job YAML")
    job_options(render)
    from corejob.catalog import add_list_options

    add_list_options(commands("list", help="bundled model or dataset configs"))
    return parser
