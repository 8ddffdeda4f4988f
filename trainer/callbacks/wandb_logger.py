"""Weights & Biases logger factory: rank 0 only, offline unless a key is configured.

W&B with no API key prompts for one; with a key but no network it blocks for minutes
before giving up. Neither may happen in a pod or a test, so the mode is decided here,
up front, from the CLI and the environment:

- ``--wandb disabled``: no W&B at all (the CSV/JSON metrics log is always written).
- ``--wandb online``: online only when an API key is configured (``WANDB_API_KEY`` or
  an ``api.wandb.ai`` entry in ``~/.netrc``), otherwise offline with a note.
- ``--wandb offline`` or no flag and no key: offline; the run lands in ``RUN_DIR/wandb``
  (``$WANDB_DIR/wandb`` when set) and can be uploaded later with ``wandb sync``.
- no flag: ``WANDB_MODE`` from the environment if set, else online with a key.

Project/entity/run name/tags come from the CLI first, then ``WANDB_PROJECT``,
``WANDB_ENTITY``, ``COREJOB_JOB_NAME``; tags name the model, dataset and sweep
(``COREJOB_SWEEP``) so runs of one sweep can be grouped.
"""

from __future__ import annotations

import argparse
import netrc
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer.contract.errors import ConfigError
from trainer.contract.result import config_label

MODES = ("disabled", "offline", "online")
DEFAULT_PROJECT = "corejob"
WANDB_HOST = "api.wandb.ai"


@dataclass(frozen=True)
class WandbSettings:
    mode: str
    project: str
    entity: str | None
    name: str | None
    tags: tuple[str, ...] = field(default_factory=tuple)
    note: str = ""  # why this mode was chosen (printed once by rank 0)


def has_api_key(env: Mapping[str, str], netrc_path: Path | None = None) -> bool:
    """True if W&B could authenticate: ``WANDB_API_KEY`` or a netrc entry."""
    if env.get("WANDB_API_KEY", "").strip():
        return True
    path = netrc_path or Path(env.get("NETRC") or Path(env.get("HOME", "~")) / ".netrc")
    try:
        return netrc.netrc(str(Path(path).expanduser())).authenticators(WANDB_HOST) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def resolve_mode(
    cli_mode: str | None, env: Mapping[str, str], key_present: bool
) -> tuple[str, str]:
    """(mode, reason) from the CLI flag, ``WANDB_MODE`` and whether a key exists."""
    requested = cli_mode or env.get("WANDB_MODE") or None
    if requested == "dryrun":
        requested = "offline"
    if requested is not None and requested not in MODES:
        source = "--wandb" if cli_mode else "WANDB_MODE"
        raise ConfigError(source, "mode", f"{requested!r} is not one of {MODES}")
    if requested == "disabled":
        return "disabled", "W&B disabled"
    if requested == "offline":
        return "offline", "W&B offline (requested)"
    if key_present:
        return "online", "W&B online"
    return "offline", "W&B offline: no API key (set WANDB_API_KEY or run `wandb login`)"


def resolve_settings(
    cli: Mapping[str, Any], env: Mapping[str, str], key_present: bool | None = None
) -> WandbSettings:
    """Pure: CLI values (``wandb``, ``wandb_project``, ``wandb_entity``, ``wandb_run_name``,
    ``wandb_tags``, ``model``, ``dataset``) + environment → settings."""
    if key_present is None:
        key_present = has_api_key(env)
    mode, note = resolve_mode(cli.get("wandb"), env, key_present)
    sweep = env.get("COREJOB_SWEEP", "")
    tags = [t for t in (cli.get("wandb_tags") or []) if t]
    for label, value in (("model", cli.get("model")), ("dataset", cli.get("dataset"))):
        if value:
            tags.append(f"{label}:{value}")
    if sweep:
        tags.append(f"sweep:{sweep}")
    return WandbSettings(
        mode=mode,
        project=cli.get("wandb_project") or env.get("WANDB_PROJECT") or DEFAULT_PROJECT,
        entity=cli.get("wandb_entity") or env.get("WANDB_ENTITY") or None,
        name=cli.get("wandb_run_name") or env.get("COREJOB_JOB_NAME") or None,
        tags=tuple(dict.fromkeys(tags)),
        note=note,
    )


def make_wandb_logger(
    settings: WandbSettings, run_dir: str | Path, global_rank: int, config: Mapping | None = None
):
    """A ``WandbLogger`` on rank 0 (None elsewhere or when disabled).

    Sets ``WANDB_MODE`` in this process so nothing inside wandb second-guesses the
    decision (e.g. trying the network when offline was chosen).
    """
    if settings.mode == "disabled" or global_rank != 0:
        return None
    from pytorch_lightning.loggers import WandbLogger

    os.environ["WANDB_MODE"] = settings.mode
    run_dir = wandb_dir(run_dir, os.environ)
    run_dir.mkdir(parents=True, exist_ok=True)
    logger = WandbLogger(
        name=settings.name,
        save_dir=str(run_dir),
        project=settings.project,
        entity=settings.entity,
        tags=list(settings.tags),
        offline=settings.mode == "offline",
        config=dict(config or {}),
        settings=_wandb_process_settings(),
    )
    # Lightning always passes ``anonymous`` (None unless asked), which wandb >= 0.19 answers
    # with a deprecation warning in every job log; None means "not set", so leave it out.
    init_arguments = getattr(logger, "_wandb_init", {})
    if init_arguments.get("anonymous", "set") is None:
        del init_arguments["anonymous"]
    print(f"[wandb] {settings.note}; project={settings.project} dir={run_dir / 'wandb'}")
    return logger


def wandb_dir(run_dir: str | Path, env: Mapping[str, str]) -> Path:
    """Where W&B writes (``<dir>/wandb/``): ``WANDB_DIR`` when set (the chart sets it to
    the run directory on the checkpoints volume), else the run directory."""
    return Path(env.get("WANDB_DIR") or run_dir)


def _wandb_process_settings():
    """Keep W&B quiet and self-contained: no console capture, no code upload."""
    import wandb

    return wandb.Settings(console="off", save_code=False, silent=True)


def wandb_loggers(
    args: argparse.Namespace, run_dir: Path, global_rank: int, config: dict | None = None
) -> list[Any]:
    """``[WandbLogger]`` on rank 0 unless disabled; ``[]`` otherwise (from the CLI flags)."""
    cli = {
        "wandb": getattr(args, "wandb", None),
        "wandb_project": getattr(args, "project_name", None),
        "wandb_entity": getattr(args, "wandb_entity", None),
        "wandb_run_name": getattr(args, "experiment_name", None),
        "wandb_tags": getattr(args, "wandb_tags", None),
        "model": config_label(args.model_config),
        "dataset": config_label(args.dataset_configs_path),
    }
    settings = resolve_settings(cli, dict(os.environ))
    logger = make_wandb_logger(settings, run_dir, global_rank, config or vars(args))
    return [logger] if logger is not None else []
