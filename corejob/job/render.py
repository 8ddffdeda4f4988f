"""Render the corejob Helm chart into the PyTorchJob object a cluster receives.

The chart (``charts/corejob``) is the single source of truth for a job's shape; this
module only drives the Helm engine (helm-python-sdk: Helm's Go template engine and
values-schema validator in a wheel, offline, no ``helm`` binary) and YAML-parses what it
produces. ``corejob render``/``submit``/``sweep`` (and so ``make render``/``make submit``)
reach it through :func:`corejob.job.spec.build_job`; ``make manifests`` through
:mod:`corejob.job.examples`; every path sees the same object.

No torch here: the controller imports this on laptops without the trainer.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import yaml

from corejob.job.kubeflow import JOB_KIND, TRAINING_RUNTIME_KIND, TRAINJOB_KIND
from corejob.job.shipped.owned import OWNED_KINDS, RenderedJob, owned_objects

CHART_DIR_ENV = "COREJOB_CHART_DIR"
DEFAULT_RELEASE_NAME = "corejob"

# Helm prefixes template failures with "execution error at (<file>:<line>:<col>): ";
# the chart's own message after it is what the user needs.
_EXECUTION_ERROR = re.compile(r"^.*?execution error at \([^)]*\):\s*")
JOB_KINDS = (JOB_KIND, TRAINJOB_KIND)
#: The TrainingRuntime a TrainJob brings along (JSON of the chart's object).
RUNTIME_ANNOTATION = "corejob.dev/training-runtime"
_SCHEMA_HEADER = "values don't meet the specifications of the schema(s)"


class RenderError(Exception):
    """The chart could not be rendered: bad values, a template failure, a missing chart.

    The message is one line and names the offending value and what to change.
    """


def chart_dir() -> Path:
    """The chart directory: ``$COREJOB_CHART_DIR``, else ``charts/corejob`` of this checkout.

    The chart lives next to the package (editable installs); a wheel does not carry it,
    so an installed package needs ``COREJOB_CHART_DIR`` (see charts/corejob/README.md).
    """
    override = os.environ.get(CHART_DIR_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "charts" / "corejob"


def _helm() -> Any:
    """Import the Helm engine lazily so importing corejob stays cheap."""
    try:
        import helm_python
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise RenderError(
            "helm-python-sdk is not installed: pip install 'corejob[controller]'"
        ) from error
    return helm_python


def _one_line(message: str) -> str:
    """Collapse the engine's multi-line report into one line without its boilerplate.

    Schema failures come as a header, the chart name, then one ``- at '/path': ...`` line
    per violation; they become ``invalid chart values: at '/a': ...; at '/b': ...``.
    """
    lines = [line.strip() for line in _EXECUTION_ERROR.sub("", message.strip()).splitlines()]
    if lines and lines[0].startswith(_SCHEMA_HEADER):
        violations = [line.lstrip("- ") for line in lines[1:] if line.startswith("-")]
        return "invalid chart values: " + "; ".join(violations)
    return " ".join(line for line in lines if line)


def render_manifests(
    values: dict[str, Any],
    release_name: str = DEFAULT_RELEASE_NAME,
    namespace: str | None = None,
) -> dict[str, str]:
    """Render every template of the chart: ``{template path: text}`` (NOTES.txt included).

    Values are validated against ``values.schema.json`` by the engine first.
    """
    directory = chart_dir()
    if not (directory / "Chart.yaml").is_file():
        raise RenderError(
            f"no Helm chart at {directory}: set {CHART_DIR_ENV} to the charts/corejob directory"
        )
    try:
        payload = json.loads(json.dumps(values))
    except (TypeError, ValueError) as error:
        raise RenderError(f"chart values are not JSON-serializable: {error}") from None
    helm = _helm()
    try:
        with helm.Chart.load(directory) as chart:
            return chart.render(payload, name=release_name, namespace=namespace)
    except helm.HelmError as error:
        raise RenderError(_one_line(str(error))) from None


def parse_documents(manifests: dict[str, str]) -> list[dict[str, Any]]:
    """YAML-parse rendered templates into objects, skipping NOTES.txt and empty documents."""
    objects: list[dict[str, Any]] = []
    for path in sorted(manifests):
        if path.endswith("NOTES.txt"):
            continue
        try:
            documents = list(yaml.safe_load_all(manifests[path]))
        except yaml.YAMLError as error:
            problem = str(error).replace("\n", " ")
            raise RenderError(f"{path} rendered invalid YAML: {problem}") from None
        objects.extend(document for document in documents if document)
    return objects


def render_job(
    values: dict[str, Any],
    release_name: str = DEFAULT_RELEASE_NAME,
    namespace: str | None = None,
) -> dict[str, Any]:
    """Render the chart with ``values`` and return the parsed job (PyTorchJob or TrainJob).

    ``metadata.namespace`` is set only when ``namespace`` is given (the chart leaves it
    to the client, as ``helm install`` does). Hook objects (``helm test`` pods) are not
    part of the job and are ignored. A TrainingRuntime the chart rendered for a TrainJob
    (``trainJob.runtime.create``) travels inside it, as the annotation
    :data:`RUNTIME_ANNOTATION`: every path a job takes (submit, sweep, rerun, the local
    ledger) then carries it, and the Kubernetes backend creates it first. The ConfigMap of
    shipped config files (either flavour) comes along as an object the job owns
    (:mod:`corejob.job.shipped.owned`), created right after the job.
    """
    job, *companions = render_objects(values, release_name, namespace)
    runtimes = [obj for obj in companions if obj.get("kind") == TRAINING_RUNTIME_KIND]
    if runtimes:
        annotations = job.setdefault("metadata", {}).setdefault("annotations", {})
        annotations[RUNTIME_ANNOTATION] = json.dumps(runtimes[0], separators=(",", ":"))
    return RenderedJob(job, [obj for obj in companions if obj.get("kind") in OWNED_KINDS])


class _ReadableDumper(yaml.SafeDumper):
    """Multi-line strings (a shipped config file) as ``|`` blocks, readable as the file."""


_ReadableDumper.add_representer(
    str,
    lambda dumper, text: dumper.represent_scalar(
        "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None
    ),
)


def render_objects(
    values: dict[str, Any],
    release_name: str = DEFAULT_RELEASE_NAME,
    namespace: str | None = None,
) -> list[dict[str, Any]]:
    """The job (PyTorchJob or TrainJob, per ``apiFlavor``) first, then the objects that come
    with it: a TrainingRuntime created before it (``trainJob.runtime.create``), the
    ConfigMap of shipped config files created after it (``configFiles``)."""
    objects = parse_documents(render_manifests(values, release_name, namespace))
    jobs = [obj for obj in objects if obj.get("kind") in JOB_KINDS]
    if len(jobs) != 1:
        raise RenderError(
            f"the chart rendered {len(jobs)} job objects (PyTorchJob or TrainJob), expected 1"
        )
    companions = [
        obj
        for obj in objects
        if obj.get("kind") not in JOB_KINDS
        and "helm.sh/hook" not in ((obj.get("metadata") or {}).get("annotations") or {})
    ]
    if namespace:
        for obj in (*jobs, *companions):
            obj.setdefault("metadata", {})["namespace"] = namespace
    return [jobs[0], *companions]


def job_to_yaml(job: dict[str, Any]) -> str:
    """A job as YAML in the chart's key order (what ``make render`` prints)."""
    return yaml.dump(
        dict(job), Dumper=_ReadableDumper, sort_keys=False, default_flow_style=False, width=1000
    )


def objects_to_yaml(job: dict[str, Any]) -> str:
    """The job, then each object it owns: every document ``submit`` sends (the owned ones
    get their ownerReference, with the job's uid, when the cluster has created the job)."""
    return "---\n".join(job_to_yaml(obj) for obj in (job, *owned_objects(job)))
