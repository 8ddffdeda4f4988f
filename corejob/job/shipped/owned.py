"""A rendered job together with the objects it owns (the ConfigMap of its shipped files).

The job itself stays the plain dict the API receives; the owned objects ride along on it
(:class:`RenderedJob`), so every path that hands a job to a backend — submit, a rerun,
a sweep's retries — hands over its ConfigMap too, and none can forget it. A cluster
backend creates them with an ownerReference to the job (:func:`owned_by`), so the garbage
collector deletes them with the job; local backends copy them into the job's directory.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

Object = dict[str, Any]
OWNED_KINDS = ("ConfigMap",)


class RenderedJob(dict[str, Any]):
    """The job object, plus ``owned``: objects created after it and deleted with it."""

    def __init__(self, job: Object, owned: Iterable[Object] = ()) -> None:
        super().__init__(job)
        self.owned: tuple[Object, ...] = tuple(owned)


# To YAML a RenderedJob is the dict it is (yaml.safe_dump matches exact types only).
yaml.SafeDumper.add_representer(RenderedJob, yaml.representer.SafeRepresenter.represent_dict)


def owned_objects(job: Object) -> tuple[Object, ...]:
    """The objects ``job`` owns; none for a job read back from a cluster or a store."""
    return job.owned if isinstance(job, RenderedJob) else ()


def owned_by(obj: Object, owner: Object) -> Object:
    """``obj`` with an ownerReference to ``owner`` (a created job: it has a uid).

    No ``blockOwnerDeletion``: setting it needs update on the owner's finalizers, a
    permission the corejob Role does not grant; the collector deletes the object anyway.
    """
    metadata = owner["metadata"]
    reference = {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": metadata["name"],
        "uid": metadata["uid"],
    }
    return {**obj, "metadata": {**obj["metadata"], "ownerReferences": [reference]}}
