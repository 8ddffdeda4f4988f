"""From what the user typed to the exact PyTorchJob that gets submitted (pure, no cluster).

``JobRequest`` (model, dataset, workers, gpus, image, Helm-dialect values) → chart values →
rendered and identified job (``corejob.job.identity``) → validated (strict CRD schema and
operator rules from ``corejob.job.validation``) → linted against what the cluster can offer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corejob import __version__
from corejob.errors import UsageError
from corejob.job.flavors.replicas import master_pod_spec, replica_specs
from corejob.job.identity import identify
from corejob.job.kubeflow import trainer_containers
from corejob.job.shipped.files import ship_configs
from corejob.job.values import image_values as split_image_reference
from corejob.job.values import merge_values
from trainer.configs import DATASETS, MODELS, is_config_path, resolve_config
from trainer.configs.dataset_schema import load_dataset_files
from trainer.configs.families import VIDEO, read_yaml, run_family
from trainer.configs.model_schema import load_model_config
from trainer.configs.video_schema import VideoDatasetConfig, VideoModelConfig
from trainer.contract.errors import ConfigError

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
    values: dict[str, Any] = field(default_factory=dict)  # -f/--set*, already merged


def check_config_name(kind: str, name: str) -> None:
    """Unknown bundled names fail with the list of known ones (the trainer's own rule);
    paths pass: they name files on this machine, shipped with the job
    (:mod:`corejob.job.shipped.files` reads them)."""
    if is_config_path(name):
        return
    try:
        resolve_config(kind, name)
    except ConfigError as error:
        raise UsageError(str(error)) from None


def check_run_configs(model: str, dataset: str) -> None:
    """The trainer's own schemas, before anything is created (they import no torch).

    A broken model YAML used to be found 24 s after submission by a failed pod, with the
    trainer's clear message only in ``corejob logs``; now ``submit``/``sweep``/``--dry-run``
    fail at once with that same one line. Checked: names, the run's family (model and
    dataset must agree), the model config against its family's schema and the dataset
    config against its family's (a V1 one with its session files, transforms and ops). A
    path that is not on this machine names a file inside the image: the trainer checks it
    there.
    """
    check_config_name(MODELS, model)
    check_config_name(DATASETS, dataset)
    if not (_on_this_machine(model) and _on_this_machine(dataset)):
        return
    try:
        if run_family(model, dataset) == VIDEO:
            for kind, name, flag, schema in (
                (MODELS, model, "--model_config", VideoModelConfig),
                (DATASETS, dataset, "--dataset_configs_path", VideoDatasetConfig),
            ):
                path = resolve_config(kind, name)
                schema.from_dict(read_yaml(path, flag), str(path))
        else:
            load_model_config(model)
            load_dataset_files(dataset)
    except ConfigError as error:
        raise UsageError(str(error)) from None


def _on_this_machine(name: str) -> bool:
    return not is_config_path(name) or Path(name).expanduser().is_file()


def image_values(image: str) -> dict[str, str]:
    """``--image repo[:tag][@digest]`` → the chart's image values.

    ``--image`` names the whole reference: no tag means the chart's default (its
    appVersion), not a tag some ``-f`` file set for another repository.
    """
    return {"tag": "", **split_image_reference(image)}


DEFAULT_IMAGE = {"repository": DEFAULT_IMAGE_REPOSITORY, "tag": __version__}


def chart_values(request: JobRequest) -> dict[str, Any]:
    """Chart values: corejob's default image < ``-f``/``--set*`` < the explicit flags."""
    values = merge_values({"image": dict(DEFAULT_IMAGE)}, request.values)
    flags: dict[str, Any] = {"model": request.model, "dataset": request.dataset}
    if request.image:
        flags["image"] = image_values(request.image)
    if request.workers is not None:
        flags["workers"] = request.workers
    if request.gpus is not None:
        flags["gpusPerReplica"] = request.gpus
    if request.sweep:
        flags["sweep"] = request.sweep
    return merge_values(values, flags)


def build_job(request: JobRequest, namespace: str | None) -> dict[str, Any]:
    """Render, identify and validate the job; every problem is a one-line UsageError."""
    from corejob.job.render import RenderError, render_job
    from corejob.job.validation import validate_job

    check_run_configs(request.model, request.dataset)
    if request.workers is not None and request.workers < 0:
        raise UsageError(f"--workers must be >= 0, got {request.workers}")
    if request.gpus is not None and request.gpus < 0:
        raise UsageError(f"--gpus must be >= 0, got {request.gpus}")
    values = merge_values(
        chart_values(request), ship_configs(request.model, request.dataset).chart_values()
    )
    try:
        job = identify(values, lambda v: render_job(v, "corejob", namespace))
    except RenderError as error:
        raise UsageError(f"cannot render the job: {error}") from None
    problems = validate_job(job)
    if problems:
        raise UsageError(f"the rendered job is invalid: {'; '.join(problems)}")
    return job


def job_pod_spec(values: dict[str, Any], namespace: str | None) -> dict[str, Any]:
    """The rank-0 pod spec the chart renders for ``values`` (site defaults, -f, --set): the
    image, user, service account, placement and volumes of every job of these values
    (``results --from-claim`` runs its reader pod like them). Model and dataset only name
    the job here: the values' own, else the bundled defaults."""
    from corejob.job.render import RenderError, render_job

    model = str(values.get("model") or "res_small")
    dataset = str(values.get("dataset") or "synthetic_mixed")
    request = JobRequest(model, dataset, values=values)
    try:
        job = render_job(chart_values(request), namespace=namespace)
    except RenderError as error:
        raise UsageError(f"cannot render the jobs' pod from your values: {error}") from None
    return master_pod_spec(job)


def containers(job: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (role, container)
        for role, spec in replica_specs(job).items()
        for container in trainer_containers(spec.get("template", {}).get("spec", {}))
    ]


def lint_job(
    job: dict[str, Any], node_gpus: list[int] | None, on_cluster: bool = False
) -> tuple[list[str], list[str]]:
    """(errors, warnings) a cluster would only reveal later: GPUs no node has, no /dev/shm;
    on a cluster also an image only this machine has and checkpoints that die with the pod."""
    errors, warnings = [], []
    if on_cluster:
        warnings += cluster_warnings(job)
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


def cluster_warnings(job: dict[str, Any]) -> list[str]:
    """Defaults that are right on a workstation and wrong on a cluster."""
    warnings = []
    for spec in replica_specs(job).values():
        pod = spec.get("template", {}).get("spec", {})
        for container in trainer_containers(pod):
            if str(container.get("image", "")).startswith("localhost/"):
                warnings.append(
                    f"image {container['image']} exists only on this machine; cluster "
                    "nodes cannot pull it: pass --image or set image.repository (in site "
                    "defaults: $XDG_CONFIG_HOME/corejob/values.yaml)"
                )
        if "emptyDir" in runs_volume(pod):
            warnings.append(
                "/runs is an emptyDir: checkpoints, the run's result.json and its offline "
                "W&B run vanish with the pod, so a restart cannot resume; set "
                "checkpoints.existingClaim"
            )
    return list(dict.fromkeys(warnings))


def runs_volume(pod: dict[str, Any]) -> dict[str, Any]:
    """The pod volume mounted on ``/runs`` (checkpoints, results), or ``{}``."""
    mounts = [m for c in trainer_containers(pod) for m in c.get("volumeMounts") or []]
    name = next((m["name"] for m in mounts if m["mountPath"] == "/runs"), None)
    return next((v for v in pod.get("volumes") or [] if v.get("name") == name), {})
