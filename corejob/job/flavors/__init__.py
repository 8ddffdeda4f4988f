"""The two Kubeflow APIs a corejob job can be (the chart's ``apiFlavor``), as data.

``pytorchjob``: the Training Operator v1 ``PyTorchJob`` (kubeflow.org/v1); ``trainjob``:
Kubeflow Trainer v2's ``TrainJob`` (trainer.kubeflow.org/v1alpha1). Everything that differs
between them for the controller (API coordinates, the trainer container's name, how pods
are found and ranked) is a field or function here, so backends branch on a :class:`Flavor`
rather than on ``kind`` strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from corejob.job import kubeflow as kf

PYTORCHJOB_FLAVOR, TRAINJOB_FLAVOR = "pytorchjob", "trainjob"


@dataclass(frozen=True)
class Flavor:
    """One Kubeflow job API: its name in values, its CRD coordinates, its trainer container."""

    name: str
    api_version: str
    kind: str
    plural: str
    container: str
    operator: str  # what to install when the CRD is missing

    @property
    def group(self) -> str:
        return self.api_version.partition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.partition("/")[2]

    @property
    def resource(self) -> str:
        """``pytorchjobs.kubeflow.org``: how RBAC and error messages name the resource."""
        return f"{self.plural}.{self.group}"


PYTORCHJOB = Flavor(
    PYTORCHJOB_FLAVOR,
    kf.JOB_API_VERSION,
    kf.JOB_KIND,
    kf.JOB_PLURAL,
    kf.CONTAINER_NAME,
    "the Kubeflow training operator v1.9: kubectl apply --server-side -k "
    '"github.com/kubeflow/training-operator.git/manifests/overlays/standalone?ref=v1.9.1"',
)
TRAINJOB = Flavor(
    TRAINJOB_FLAVOR,
    kf.TRAINJOB_API_VERSION,
    kf.TRAINJOB_KIND,
    kf.TRAINJOB_PLURAL,
    kf.TRAINJOB_CONTAINER_NAME,
    "Kubeflow Trainer v2.3: kubectl apply --server-side -k "
    '"github.com/kubeflow/trainer.git/manifests/overlays/manager?ref=v2.3.0" and its runtimes',
)
FLAVORS: dict[str, Flavor] = {PYTORCHJOB.name: PYTORCHJOB, TRAINJOB.name: TRAINJOB}
DEFAULT_FLAVOR = PYTORCHJOB_FLAVOR


def flavor_of(job: dict[str, Any]) -> Flavor:
    """The flavour of a job object by its ``kind`` (a PyTorchJob when it has none)."""
    return TRAINJOB if job.get("kind") == kf.TRAINJOB_KIND else PYTORCHJOB


def choose_flavor(installed: set[str], configured: str | None) -> str | None:
    """Which flavour to submit as, from the CRDs a cluster serves (``installed``).

    An explicit choice always wins; otherwise the only installed one, or with both the
    default. None when neither is installed (the caller reports the missing CRD).
    """
    if configured:
        return configured
    if len(installed) == 1:
        return next(iter(installed))
    return DEFAULT_FLAVOR if installed else None
