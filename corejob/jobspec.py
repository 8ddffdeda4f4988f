"""From what the user typed to the exact PyTorchJob that gets submitted (pure, no cluster).

``JobRequest`` (model, dataset, workers, gpus, image, --set overrides) → chart values →
rendered and identified job (``corejob.identity``) → validated (strict CRD schema and
operator rules from ``corejob.validation``) → linted against what the cluster can offer.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from corejob import __version__
from corejob.errors import UsageError
from corejob.identity import identify
from corejob.render import image_values as split_image_reference
from corejob.render import merge_values

DEFAULT_IMAGE_REPOSITORY = "localhost/corejob-trainer"
GPU = "nvidia.com/gpu"


@dataclass(frozen=True)
class JobRequest:
    """One training job as the user asked for it."""

    model: str
    dataset: str
    workers: int | None = None
    gpus: int | None = None
    image: str | None = None
    sweep: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)


def configs_dir() -> Path:
    """``trainer/configs`` of the installed trainer package, found without importing it."""
    spec = importlib.util.find_spec("trainer")
    if spec and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))) / "configs"
    return Path(__file__).resolve().parents[1] / "trainer" / "configs"


def available(kind: str) -> list[str]:
    """Config names of ``kind`` ("models" or "datasets"): the YAML files in its directory."""
    return sorted(p.stem for p in (configs_dir() / kind).glob("*.yaml"))


def check_config_name(kind: str, name: str) -> None:
    """Unknown names fail with the list of known ones; paths (in the image) pass."""
    if "/" in name or name.endswith((".yaml", ".yml")):
        return
    known = available(f"{kind}s")
    if name not in known:
        raise UsageError(f"unknown {kind} {name!r}; available: {', '.join(known) or '(none)'}")


def parse_set(items: list[str]) -> dict[str, Any]:
    """``["trainer.maxEpochs=5", "wandb.mode=online"]`` → nested values (YAML-typed)."""
    values: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip() or any(not part for part in key.split(".")):
            raise UsageError(
                f"invalid --set {item!r}: expected key=value, e.g. --set trainer.maxEpochs=5"
            )
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as error:
            problem = str(error).splitlines()[0]
            raise UsageError(f"invalid --set {item!r}: value is not YAML ({problem})") from None
        target = values
        *parents, leaf = key.strip().split(".")
        for part in parents:
            existing = target.setdefault(part, {})
            if not isinstance(existing, dict):
                raise UsageError(f"invalid --set {item!r}: {part!r} was already set to a value")
            target = existing
        target[leaf] = value
    return values


def image_values(image: str | None) -> dict[str, str]:
    """``repo[:tag][@digest]`` → the chart's image values; no image: the local default."""
    if not image:
        return {"repository": DEFAULT_IMAGE_REPOSITORY, "tag": __version__}
    # --image names the whole reference: no tag means the chart's default, not an older -f tag.
    return {"tag": "", **split_image_reference(image)}


def chart_values(request: JobRequest) -> dict[str, Any]:
    values: dict[str, Any] = {
        "model": request.model,
        "dataset": request.dataset,
        "image": image_values(request.image),
    }
    if request.workers is not None:
        values["workers"] = request.workers
    if request.gpus is not None:
        values["gpusPerReplica"] = request.gpus
    if request.sweep:
        values["sweep"] = request.sweep
    return merge_values(values, request.overrides)


def build_job(request: JobRequest, namespace: str | None) -> dict[str, Any]:
    """Render, identify and validate the job; every problem is a one-line UsageError."""
    from corejob.render import RenderError, render_job
    from corejob.validation import validate_job

    check_config_name("model", request.model)
    check_config_name("dataset", request.dataset)
    if request.workers is not None and request.workers < 0:
        raise UsageError(f"--workers must be >= 0, got {request.workers}")
    if request.gpus is not None and request.gpus < 0:
        raise UsageError(f"--gpus must be >= 0, got {request.gpus}")
    try:
        job = identify(chart_values(request), lambda v: render_job(v, "corejob", namespace))
    except RenderError as error:
        raise UsageError(f"cannot render the job: {error}") from None
    problems = validate_job(job)
    if problems:
        raise UsageError(f"the rendered job is invalid: {'; '.join(problems)}")
    return job


def containers(job: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    specs = job.get("spec", {}).get("pytorchReplicaSpecs", {})
    return [
        (role, container)
        for role, spec in specs.items()
        for container in spec.get("template", {}).get("spec", {}).get("containers", [])
    ]


def lint_job(job: dict[str, Any], node_gpus: list[int] | None) -> tuple[list[str], list[str]]:
    """(errors, warnings) a cluster would only reveal later: GPUs no node has, no /dev/shm."""
    errors, warnings = [], []
    for role, container in containers(job):
        limits = (container.get("resources") or {}).get("limits") or {}
        wanted = int(limits.get(GPU, 0) or 0)
        if wanted and node_gpus is not None and wanted > max(node_gpus, default=0):
            errors.append(
                f"{role} requests {wanted} {GPU} per pod but the largest node has "
                f"{max(node_gpus, default=0)} allocatable; lower --gpus"
            )
        mounts = {m.get("mountPath") for m in container.get("volumeMounts") or []}
        if "/dev/shm" not in mounts:
            warnings.append(
                f"{role} has no /dev/shm volume: data loaders and NCCL may crash on the 64 MiB "
                "default; keep shm.enabled=true"
            )
    return errors, list(dict.fromkeys(warnings))
