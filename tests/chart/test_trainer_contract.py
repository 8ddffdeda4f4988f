"""Chart ↔ trainer: every trainer value the chart's schema accepts must parse in the trainer.

The chart turns ``trainer.*`` values into ``corejob-train`` flags (``corejob.trainerFlags``
in ``_helpers.tpl``); the values schema decides what a user may set. Nothing else ties the
two, so this test does: it derives sample values from the schema itself (every enum
member, the boundaries of every number, every decimal-string form Helm's ``--set``
produces), renders the chart with each, and runs the trainer's own argument parser on the
rendered container args. A schema that accepts a value the trainer rejects would give a
job that renders, validates, is scheduled and then fails with exit 2.

How it fails — add ``"bf16"`` to ``trainer.precision``'s enum in ``values.schema.json``::

    AssertionError: trainer.precision='bf16' renders --precision bf16, which
    corejob-train rejects: argument --precision: invalid choice: 'bf16' (choose from ...)

``test_a_value_the_trainer_rejects_is_caught`` makes exactly that edit on a copy of the
chart and checks that the checker reports it.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from corejob.job.render import CHART_DIR_ENV, chart_dir, render_job
from tests.chart.conftest import container, values
from trainer.cli import build_parser, parse_args

# Pass-through values: not typed flags, so "every accepted value parses" cannot hold.
PASS_THROUGH = {"extraArgs"}
STRING_CANDIDATES = ("auto", "never", "/runs/ckpt/last.ckpt", "3e-4", "0.5", "12", "x")


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    return resolve(schema, schema["definitions"][ref.rsplit("/", 1)[1]]) if ref else node


def sample_values(node: dict[str, Any]) -> list[Any]:
    """Values the schema node accepts: enum members, number boundaries, matching strings."""
    if "enum" in node:
        return [value for value in node["enum"] if value is not None]
    types = node.get("type", [])
    types = [types] if isinstance(types, str) else types
    samples: list[Any] = []
    low = node.get("minimum", node.get("exclusiveMinimum"))
    exclusive = "exclusiveMinimum" in node
    if "integer" in types:
        start = int(low) + (1 if exclusive else 0) if low is not None else -3
        samples += [start, start + 1, 1000]
    if "number" in types:
        start = float(low) if low is not None else -1.5
        samples += [start + 1e-3 if exclusive else start, 0.25 + max(start, 0), 7.5]
    if "string" in types:
        pattern = re.compile(node.get("pattern", ""))
        samples += [text for text in STRING_CANDIDATES if pattern.search(text)]
    return samples


def rendered_trainer_args(chart: Path, trainer_values: dict[str, Any]) -> list[str]:
    """The Master's trainer arguments (the image's entrypoint is ``python -m trainer``)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CHART_DIR_ENV, str(chart))
        job = render_job(values(trainer=trainer_values))
    args = container(job)["args"]
    assert args[0] == "train", args
    return args


def trainer_rejection(argv: list[str]) -> str | None:
    """The trainer parser's one-line error for ``argv``, or None when it parses."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            parse_args(argv)
        except SystemExit:
            return stderr.getvalue().strip().removeprefix("corejob-train train: error: ")
    return None


def contract_violations(chart: Path) -> list[str]:
    """One line per schema-accepted trainer value that the trainer's parser rejects."""
    schema = json.loads((chart / "values.schema.json").read_text())
    properties = schema["properties"]["trainer"]["properties"]
    base = rendered_trainer_args(chart, {})
    problems = []
    for key, node in properties.items():
        if key in PASS_THROUGH:
            continue
        samples = sample_values(resolve(schema, node))
        assert samples, f"trainer.{key}: no sample value could be derived from its schema"
        for value in samples:
            argv = rendered_trainer_args(chart, {key: value})
            error = trainer_rejection(argv)
            if error is not None:
                added = " ".join(arg for arg in argv if arg not in base)
                problems.append(
                    f"trainer.{key}={value!r} renders {added}, which corejob-train rejects: {error}"
                )
    return problems


def test_every_schema_choice_parses_in_the_trainer() -> None:
    assert contract_violations(chart_dir()) == []


def test_a_value_the_trainer_rejects_is_caught(tmp_path: Path) -> None:
    chart = tmp_path / "corejob"
    shutil.copytree(chart_dir(), chart)
    schema_path = chart / "values.schema.json"
    schema = json.loads(schema_path.read_text())
    schema["properties"]["trainer"]["properties"]["precision"]["enum"].append("bf16")
    schema_path.write_text(json.dumps(schema))
    (problem,) = contract_violations(chart)
    assert problem.startswith("trainer.precision='bf16' renders --precision bf16")
    assert "invalid choice: 'bf16'" in problem


def train_action(flag: str) -> Any:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    train = subparsers.choices["train"]
    return next(a for a in train._actions if flag in a.option_strings)


def test_schema_enums_offer_every_trainer_choice() -> None:
    """The other direction: a choice the trainer gained is offered by the chart too."""
    schema = json.loads((chart_dir() / "values.schema.json").read_text())
    properties = schema["properties"]["trainer"]["properties"]
    base = rendered_trainer_args(chart_dir(), {})
    checked = 0
    for key, node in properties.items():
        enum = [value for value in resolve(schema, node).get("enum", []) if value is not None]
        if not enum:
            continue
        argv = rendered_trainer_args(chart_dir(), {key: enum[0]})
        (flag,) = [arg for arg in argv if arg.startswith("--") and arg not in base]
        assert set(enum) == set(train_action(flag).choices), f"trainer.{key} vs {flag}"
        checked += 1
    assert checked >= 3  # precision, dsetDtype, accelerator


def test_extra_args_in_helm_list_syntax_reach_the_trainer() -> None:
    argv = rendered_trainer_args(chart_dir(), {"extraArgs": ["--seed", 3]})
    assert argv[-2:] == ["--seed", "3"]
    assert parse_args(argv).seed == 3


def test_wandb_defaults_to_offline_runs_on_the_checkpoints_volume() -> None:
    """The chart's default W&B: offline, written under the run directory on /runs (the
    checkpoints claim), the same directory the trainer is told to run in."""
    from trainer.callbacks.wandb_logger import resolve_settings, wandb_dir

    job = render_job(values(checkpoints={"existingClaim": "lab-runs"}))
    env = {e["name"]: e.get("value") for e in container(job)["env"]}
    args = container(job)["args"]
    run_dir = args[args.index("--run_dir") + 1]
    assert env["WANDB_MODE"] == "offline" and env["WANDB_DIR"] == run_dir
    assert run_dir.startswith("/runs/")
    mounts = {m["mountPath"]: m["name"] for m in container(job)["volumeMounts"]}
    volumes = {v["name"]: v for v in job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]
               ["spec"]["volumes"]}  # fmt: skip
    assert volumes[mounts["/runs"]]["persistentVolumeClaim"]["claimName"] == "lab-runs"
    settings = resolve_settings({}, {k: v for k, v in env.items() if v}, key_present=True)
    assert settings.mode == "offline"  # a key in the pod does not turn the default online
    assert wandb_dir("/elsewhere", env) == Path(run_dir)
