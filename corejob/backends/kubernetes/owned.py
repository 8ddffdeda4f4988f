"""Create the objects a job owns (its ConfigMap) right after the job, owned by it.

Order: the job first, then each owned object with an ownerReference to the job's uid, so
the garbage collector deletes it with the job (``corejob cancel``, the job's TTL). Pods the
operator starts meanwhile wait for the ConfigMap volume (the kubelet retries the mount),
which is how Kubernetes handles a volume that appears late. Nothing is left
half-submitted: when an owned object cannot be created, a job this submit created is
deleted again and the error says so. A job that already existed gets its missing objects
(an earlier submit interrupted between the two creates); existing ones are left alone. A
new job whose ConfigMap name is still taken by its predecessor's (a rerun: cancel, then
create) waits for the garbage collector to delete that one.
"""

from __future__ import annotations

import os
import sys
from typing import Any, NoReturn

from corejob.backends.kubernetes.api import KubeApi
from corejob.errors import ConflictError, CorejobError
from corejob.job.shipped.owned import owned_by, owned_objects

Job = dict[str, Any]
# How long a new job waits for its predecessor's ConfigMap to be garbage-collected.
STALE_WAIT_S = 120.0
STALE_POLL_S = 1.0


def create_owned(api: KubeApi, job: Job, owner: Job, created: bool) -> tuple[str, ...]:
    """Create ``job``'s owned objects under ``owner`` (the job as the server has it, with
    its uid); one note per object created."""
    notes = []
    name = owner["metadata"]["name"]
    for obj in owned_objects(job):
        what = f"{obj['kind']} {obj['metadata']['name']}"
        try:
            if not _create(api, owned_by(obj, owner), created, what):
                continue  # the existing job's own, created by the submit that made the job
        except CorejobError as error:
            _undo(api, name, created, str(error), type(error))
        keys = ", ".join(sorted(obj.get("data") or {}))
        notes.append(f"sent {keys} with job {name} as {what} (owned by the job, deleted with it)")
    return tuple(notes)


def _create(api: KubeApi, obj: Job, created: bool, what: str) -> bool:
    """Create ``obj``; False when it exists and the job did too. For a new job, one of that
    name is the previous job's (same name: same content), which the collector deletes only
    after that job is gone: create again until it has (bounded), never adopt it."""
    deadline = None
    while True:
        try:
            api.create_config_map(obj)
            return True
        except ConflictError:
            if not created:
                return False
            if deadline is None:
                wait_s = float(os.environ.get("COREJOB_DELETION_WAIT_S", STALE_WAIT_S))
                deadline = api.clock() + wait_s
                print(f"corejob: {what} of an earlier job of this name still exists; waiting up "
                      f"to {wait_s:.0f}s for the garbage collector to delete it",
                      file=sys.stderr)  # fmt: skip
            if api.clock() >= deadline:
                raise ConflictError(
                    f"{what} still exists in namespace {api.namespace!r} (not this job's: an "
                    "earlier job's not yet collected, or someone else's)"
                ) from None
            api.sleep(STALE_POLL_S)


def _undo(
    api: KubeApi, name: str, created: bool, message: str, kind: type[CorejobError]
) -> NoReturn:
    """Delete the job this submit created (its pods could never start), then fail."""
    if created:
        api.delete_job(name)
        raise kind(f"{message}; job {name} was deleted again: nothing was submitted")
    raise kind(f"{message}; job {name} exists without it: `corejob cancel {name}`, then submit")
