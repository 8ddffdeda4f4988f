"""Deterministic job identity: the same configuration always gets the same job name.

The hash covers the whole rendered job except the fields that carry the identity itself
(name, config-hash label). The *name* is built by the chart, the one place the job-name
rule lives (``corejob.jobName`` in ``charts/corejob/templates/_helpers.tpl``): given a
``configHash`` it names the job ``<model>-<dataset>-<hash>``, cut to a DNS-1035 label of
at most 50 characters. Re-submitting an unchanged config therefore finds the existing job
instead of creating a duplicate; any change to the rendered spec (image, args, resources,
sweep) gives a new name.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from typing import Any

from corejob.job.state import LABEL_CONFIG_HASH

HASH_LENGTH = 10
# The name the first render uses; it appears in env/args, so it must not depend on the hash.
PLACEHOLDER_NAME = "corejob-identity-placeholder"

Job = dict[str, Any]
Renderer = Callable[[dict[str, Any]], Job]


def config_hash(job: Job) -> str:
    """Hash of the rendered job without its identity fields (name, hash label)."""
    stripped = copy.deepcopy(job)
    metadata = stripped.get("metadata", {})
    metadata.pop("name", None)
    (metadata.get("labels") or {}).pop(LABEL_CONFIG_HASH, None)
    canonical = json.dumps(stripped, sort_keys=True, separators=(",", ":"))
    canonical = canonical.replace(PLACEHOLDER_NAME, "")
    return hashlib.sha256(canonical.encode()).hexdigest()[:HASH_LENGTH]


def identify(values: dict[str, Any], render: Renderer) -> Job:
    """Render twice: once to hash the spec, once with ``configHash`` set (the chart names it).

    An explicit ``jobName`` value is kept for the second render: the chart uses it verbatim.
    """
    first = render(dict(values, jobName=PLACEHOLDER_NAME, configHash=""))
    return render(dict(values, configHash=config_hash(first)))
