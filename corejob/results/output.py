"""The results as data: ``-o json|yaml`` on stdout, ``--csv`` and ``--json`` files.

Every format carries the same entries as the printed table (latest run per cell, or
every run with ``--all``), with the same names: the metric is in each key
(``best_val_bps``, ``oracle_ratio``), ``runs`` is the cell's run count, ``flags`` what
the table marks and ``flag_reasons`` why (``not-comparable``: the limits that differ), so a
script sees what a reader sees.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from corejob.results.table import TableEntry

CSV_FIELDS = ["job", "model", "dataset", "sweep", "state", "best_val_bps", "final_val_bps",
              "oracle_bps", "oracle_ratio", "epochs", "global_step", "wall_time_s", "attempts",
              "world_size", "samples_per_s", "runs", "flags", "source", "created",
              "message"]  # fmt: skip


def entry_record(entry: TableEntry) -> dict[str, Any]:
    """One entry as plain data: the run's fields, its cell's run count and its flags."""
    return {**asdict(entry.row), "runs": entry.runs, "flags": list(entry.flags),
            "flag_reasons": dict(entry.reasons)}  # fmt: skip


def to_json(entries: Sequence[TableEntry]) -> str:
    return json.dumps([entry_record(e) for e in entries], indent=2, sort_keys=True) + "\n"


def to_yaml(entries: Sequence[TableEntry]) -> str:
    return yaml.safe_dump([entry_record(e) for e in entries], sort_keys=True)


def write_json(entries: Sequence[TableEntry], path: Path) -> None:
    path.write_text(to_json(entries))


def write_csv(entries: Sequence[TableEntry], path: Path) -> None:
    """The flat fields (the nested result object stays in the JSON)."""
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for entry in entries:
            record = entry_record(entry)
            record["flags"] = ",".join(entry.flags)
            writer.writerow({key: record[key] for key in CSV_FIELDS})
