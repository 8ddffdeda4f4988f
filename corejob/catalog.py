"""``corejob list models|datasets``: the bundled configs, one line each, with what they are.

``submit -m NAME`` takes these names, so users need a way to see them (and what each one
is) without opening the trainer's source tree. The description comes from the config
itself: its ``description:`` field, else the first sentence of the comment block it starts
with. Only ``trainer.configs`` is read: no torch, no cluster.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import yaml

from corejob.errors import ExitCode
from corejob.results.status_table import format_rows
from trainer.configs import DATASETS, MODELS, available_configs, config_dir

KINDS = (MODELS, DATASETS)


def add_list_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=KINDS, help="which bundled configs to list")
    parser.add_argument("-o", "--output", choices=["table", "json"], default="table")
    parser.add_argument("--debug", action="store_true", help="tracebacks on errors")


def leading_comment(text: str) -> str:
    """The first sentence of the comment block a YAML file opens with ("" if none), joined
    over its lines (a first line alone can stop mid-sentence: "... becomes a 1x1"); a
    comment further down describes a field, not the file."""
    block: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("#"):
            if stripped or block:
                break
            continue
        comment = stripped.lstrip("#").strip()
        if comment:
            block.append(comment)
        elif block:
            break  # a blank comment line ends the paragraph
    joined = " ".join(block)
    sentence = re.match(r"(.+?[.!?])(\s|$)", joined)
    return sentence.group(1) if sentence else joined


def describe(path: Path) -> str:
    """One line saying what the config is: ``description:`` (whitespace folded to one
    line), else the leading comment, else ""."""
    text = path.read_text()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        data = None
    description = data.get("description") if isinstance(data, dict) else None
    if isinstance(description, str) and description.strip():
        return " ".join(description.split())
    return leading_comment(text)


def catalog(kind: str) -> list[dict[str, str]]:
    """``[{"name", "description"}]`` for every bundled config of ``kind``, by name."""
    folder = config_dir(kind)
    return [
        {"name": name, "description": describe(folder / f"{name}.yaml")}
        for name in available_configs(kind)
    ]


def run_list(args: argparse.Namespace) -> int:
    entries = catalog(args.kind)
    if args.output == "json":
        print(json.dumps(entries, indent=2))
    elif entries:
        header = ["MODEL" if args.kind == MODELS else "DATASET", "DESCRIPTION"]
        print(format_rows([header] + [[e["name"], e["description"]] for e in entries]))
    else:
        print(f"no bundled {args.kind}")
    return ExitCode.OK
