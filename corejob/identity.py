"""Deterministic job identity: the same configuration always gets the same job name.

name = ``<model>-<dataset>-<hash>`` sanitized to a DNS-1035 label of at most 50
characters, where the hash covers the whole rendered PyTorchJob except the fields that
carry the identity itself (name, config-hash label). Re-submitting an unchanged config
therefore finds the existing job instead of creating a duplicate; any change to the
rendered spec (image, args, resources, sweep) gives a new name.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

from corejob.jobstate import LABEL_CONFIG_HASH

MAX_NAME_LENGTH = 50
HASH_LENGTH = 10
# The name the first render uses; it appears in env/args, so it must not depend on the hash.
PLACEHOLDER_NAME = "corejob-identity-placeholder"

Job = dict[str, Any]
Renderer = Callable[[dict[str, Any]], Job]


def sanitize(text: str) -> str:
    """Lower-case DNS-1035 fragment: [a-z0-9-], no leading digit/dash, no double dashes."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", text.lower())
    cleaned = re.sub(r"-{2,}", "-", cleaned).strip("-")
    return cleaned if cleaned and cleaned[0].isalpha() else f"j-{cleaned}".rstrip("-")


def config_hash(job: Job) -> str:
    """Hash of the rendered job without its identity fields (name, hash label)."""
    stripped = copy.deepcopy(job)
    metadata = stripped.get("metadata", {})
    metadata.pop("name", None)
    (metadata.get("labels") or {}).pop(LABEL_CONFIG_HASH, None)
    canonical = json.dumps(stripped, sort_keys=True, separators=(",", ":"))
    canonical = canonical.replace(PLACEHOLDER_NAME, "")
    return hashlib.sha256(canonical.encode()).hexdigest()[:HASH_LENGTH]


def job_name(model: str, dataset: str, digest: str) -> str:
    """``<model>-<dataset>-<hash>``; the readable prefix is cut so the total is ≤ 50."""
    prefix = sanitize(f"{model}-{dataset}")[: MAX_NAME_LENGTH - len(digest) - 1].rstrip("-")
    return f"{prefix}-{digest}"


def identify(values: dict[str, Any], render: Renderer) -> Job:
    """Render twice: once to hash the spec, once with ``jobName`` + ``configHash`` set."""
    first = render(dict(values, jobName=PLACEHOLDER_NAME, configHash=""))
    digest = config_hash(first)
    name = job_name(str(values.get("model", "")), str(values.get("dataset", "")), digest)
    return render(dict(values, jobName=name, configHash=digest))
