"""Create the objects a job owns (its ConfigMap) right after the job, owned by it.

Order: the job first, then each owned object with an ownerReference to the job's uid, so
the garbage collector deletes it with the job (``corejob cancel``, the job's TTL). Pods the
operator starts meanwhile wait for the ConfigMap volume (the kubelet retries the mount),
which is how Kubernetes handles a volume that appears late. Nothing is left
half-submitted: when an owned object cannot be created, a job this submit created is
deleted again and the error says so. A job that already existed gets its missing objects
(an earlier submit interrupted between the two creates); existing ones are left alone.
"""

from __future__ import annotations

from typing import Any, NoReturn

from corejob.backends.kubernetes.api import KubeApi
from corejob.errors import ConflictError, CorejobError
from corejob.job.shipped.owned import owned_by, owned_objects

Job = dict[str, Any]


def create_owned(api: KubeApi, job: Job, owner: Job, created: bool) -> tuple[str, ...]:
    """Create ``job``'s owned objects under ``owner`` (the job as the server has it, with
    its uid); one note per object created."""
    notes = []
    name = owner["metadata"]["name"]
    for obj in owned_objects(job):
        what = f"{obj['kind']} {obj['metadata']['name']}"
        try:
            api.create_config_map(owned_by(obj, owner))
        except ConflictError as error:
            if not created:
                continue  # the existing job's own, created by the submit that made the job
            _undo(api, name, created, f"{error} (left by an earlier job {name} that is still "
                  "being garbage-collected? submit again in a minute)", type(error))  # fmt: skip
        except CorejobError as error:
            _undo(api, name, created, str(error), type(error))
        keys = ", ".join(sorted(obj.get("data") or {}))
        notes.append(f"sent {keys} with job {name} as {what} (owned by the job, deleted with it)")
    return tuple(notes)


def _undo(
    api: KubeApi, name: str, created: bool, message: str, kind: type[CorejobError]
) -> NoReturn:
    """Delete the job this submit created (its pods could never start), then fail."""
    if created:
        api.delete_job(name)
        raise kind(f"{message}; job {name} was deleted again: nothing was submitted")
    raise kind(f"{message}; job {name} exists without it: `corejob cancel {name}`, then submit")
