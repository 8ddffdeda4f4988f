"""``python -m benchmarks`` (``make bench``): run every ``benchmarks/bench_*.py`` module.

Each module exposes ``run() -> list[dict]``; a row has ``name``, ``value``, ``unit``,
``target`` (text such as ``<= 1.10``) and ``ok`` (bool, or None when not judged). Rows
are printed as one table and written to ``bench-results/<module>.json``. ``--only NAME``
runs one module (``trainer`` or ``bench_trainer``). Exit status 1 when a module crashed;
a missed target is reported, not fatal (shared CI machines are noisy).
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import benchmarks

RESULTS_DIR = Path("bench-results")
COLUMNS = ("name", "value", "unit", "target", "ok")


def discover() -> list[str]:
    """Names of the ``bench_*`` modules in this package, sorted."""
    return sorted(
        info.name
        for info in pkgutil.iter_modules(benchmarks.__path__)
        if info.name.startswith("bench_")
    )


def select(modules: Sequence[str], only: str | None) -> list[str]:
    if only is None:
        return list(modules)
    wanted = only if only.startswith("bench_") else f"bench_{only}"
    if wanted not in modules:
        raise SystemExit(f"benchmarks: --only {only}: unknown; known: {', '.join(modules)}")
    return [wanted]


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if value is None:
        return "-"
    return str(value)


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """A fixed-width text table of benchmark rows (module column first)."""
    header = ("module", *COLUMNS)
    cells = [header] + [tuple(_cell(row.get(col)) for col in ("module", *COLUMNS)) for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run_module(name: str) -> tuple[list[dict[str, Any]], bool]:
    """Import and run one module; returns its rows (tagged) and whether it crashed."""
    started = time.perf_counter()
    try:
        rows = importlib.import_module(f"benchmarks.{name}").run()
    except Exception:
        traceback.print_exc()
        return [{"module": name, "name": "crashed", "ok": False}], True
    tagged = [{"module": name, **row} for row in rows]
    payload = {"module": name, "seconds": round(time.perf_counter() - started, 2), "rows": rows}
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    return tagged, False


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--only", default=None, help="run one module, e.g. trainer")
    parser.add_argument("--list", action="store_true", help="list the modules and exit")
    args = parser.parse_args(argv)
    modules = discover()
    if args.list:
        print("\n".join(modules))
        return 0
    all_rows: list[dict[str, Any]] = []
    crashed = False
    for name in select(modules, args.only):
        print(f"== {name}", file=sys.stderr, flush=True)
        rows, failed = run_module(name)
        all_rows += rows
        crashed |= failed
    print(format_table(all_rows))
    print(f"JSON: {RESULTS_DIR}/<module>.json")
    return 1 if crashed else 0


if __name__ == "__main__":
    raise SystemExit(main())
