"""``corejob plot JOB``: training curves of any job, drawn from its log.

Why from the log: the run directory sits on the job's volume (a PVC on a cluster), which
the controller cannot read, but every backend can read the master's log, and the trainer
prints a ``COREJOB_PROGRESS`` record every few seconds (step, training loss, samples/s,
the last validation's bits/spike per session) and a ``COREJOB_RESULT`` line with the
oracle at the end. :func:`curves_from_log` is the pure part; :func:`plot_curves` draws.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corejob.backends.base import Backend
from corejob.errors import CorejobError, ExitCode
from trainer.contract.progress import parse_progress_line
from trainer.contract.result import parse_result_line

Points = list[tuple[float, float]]


class NoProgressError(CorejobError):
    """The job has logged no progress record (not started, or a trainer without them)."""

    exit_code = ExitCode.NOT_FOUND


@dataclass
class Curves:
    """Series keyed by what they show; x is the optimizer step."""

    train_loss: Points = field(default_factory=list)
    samples_per_s: Points = field(default_factory=list)
    val_bps: dict[str, Points] = field(default_factory=dict)  # "overall" + sessions
    oracle: dict[str, float] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.train_loss or self.val_bps)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and value == value else None


def curves_from_log(lines: Iterable[str]) -> Curves:
    """Every progress record becomes points (a validation once, at the step it was seen
    first); the result line adds the oracle. Restarts repeat steps: the later one wins."""
    curves, seen_val_epochs, kept = Curves(), set(), list(lines)
    by_step: dict[str, dict[float, float]] = {"train_loss": {}, "samples_per_s": {}}
    val: dict[str, dict[float, float]] = {}
    for line in kept:
        record = parse_progress_line(line.split("] ", 1)[-1] if line.startswith("[") else line)
        step = _number(record.get("step")) if record else None
        if record is None or step is None:
            continue
        for key in by_step:
            if (value := _number(record.get(key))) is not None:
                by_step[key][step] = value
        epoch = record.get("val_epoch")
        if epoch is not None and (record.get("attempt"), epoch) not in seen_val_epochs:
            seen_val_epochs.add((record.get("attempt"), epoch))
            sessions = {"overall": record.get("val_bps_overall"), **(record.get("val_bps") or {})}
            for name, value in sessions.items():
                if (number := _number(value)) is not None:
                    val.setdefault(name, {})[step] = number
    curves.train_loss = sorted(by_step["train_loss"].items())
    curves.samples_per_s = sorted(by_step["samples_per_s"].items())
    curves.val_bps = {name: sorted(points.items()) for name, points in val.items()}
    result = parse_result_line(kept) or {}
    oracle = {"overall": result.get("oracle_bps_overall"), **(result.get("oracle_bps") or {})}
    curves.oracle = {k: v for k, v in oracle.items() if _number(v) is not None}
    return curves


def plot_curves(curves: Curves, title: str, out: Path) -> Path:
    """A 3-panel PNG: training loss, validation bits/spike (dashed: oracle), samples/s."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(15, 4), layout="tight")
    loss, bps, speed = figure.subplots(1, 3)
    if curves.train_loss:
        loss.plot(*zip(*curves.train_loss, strict=True), label="train loss (last step)")
    loss.set_title("training loss")
    overall_first = sorted(curves.val_bps.items(), key=lambda item: item[0] != "overall")
    for i, (name, points) in enumerate(overall_first):
        color = "k" if name == "overall" else f"C{i}"
        bps.plot(*zip(*points, strict=True), marker="o", ms=3, color=color, label=name,
                 lw=2 if name == "overall" else 1)  # fmt: skip
        if name in curves.oracle:
            bps.axhline(curves.oracle[name], color=color, ls="--", lw=0.8)
    bps.set_title("validation bits/spike (dashed: oracle)")
    if curves.samples_per_s:
        speed.plot(*zip(*curves.samples_per_s, strict=True), label="samples/s (all ranks)")
    speed.set_title("throughput")
    for axes in (loss, bps, speed):
        axes.set_xlabel("optimizer step")
        if axes.lines:
            axes.legend(fontsize=7)
    figure.suptitle(title)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)
    return out


def add_plot_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job")
    parser.add_argument("--out", type=Path, help="PNG to write (default: ./<job>-curves.png)")


def run_plot(args: argparse.Namespace, backend: Backend) -> int:
    curves = curves_from_log(backend.logs(args.job))
    if curves.empty:
        raise NoProgressError(
            f"job {args.job}: no COREJOB_PROGRESS record in its log yet (see `corejob logs "
            f"{args.job}`)"
        )
    out = plot_curves(curves, args.job, args.out or Path(f"{args.job}-curves.png"))
    print(f"wrote {out}")
    return ExitCode.OK
