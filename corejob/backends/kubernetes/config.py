"""Where the cluster is: kubeconfig (``KUBECONFIG``, ``~/.kube/config``, ``--context``) or
in-cluster service-account config, and which namespace to use.

Kept apart from the API calls so that ``corejob`` can decide *whether* a cluster is
configured (backend auto-selection) without importing or contacting anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from corejob.errors import NoClusterError

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass(frozen=True)
class ClusterTarget:
    """The resolved connection: an API client configuration plus the namespace to use."""

    configuration: Any  # kubernetes.client.Configuration
    namespace: str
    context: str | None
    server: str


def kubeconfig_paths() -> list[Path]:
    """The kubeconfig files kubectl would read, in order (KUBECONFIG is a path list)."""
    if os.environ.get("KUBECONFIG"):
        return [Path(p) for p in os.environ["KUBECONFIG"].split(os.pathsep) if p]
    return [Path.home() / ".kube" / "config"]


def current_context(context: str | None = None) -> str | None:
    """The context kubectl would use, or None when no kubeconfig names one."""
    for path in kubeconfig_paths():
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        names = {c.get("name") for c in data.get("contexts") or []}
        chosen = context or data.get("current-context")
        if chosen and chosen in names:
            return chosen
    return None


def in_cluster() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and (SERVICE_ACCOUNT / "token").exists()


def check_kubeconfig(context: str | None = None) -> None:
    """``NoClusterError`` naming the file when ``KUBECONFIG`` names one that does not exist
    and no other file it names has the context: a typo there would otherwise quietly send
    the job to another backend (auto-selection) or blame the context."""
    missing = [path for path in kubeconfig_paths() if not path.exists()]
    if os.environ.get("KUBECONFIG") and missing and current_context(context) is None:
        names = ", ".join(str(path) for path in missing)
        raise NoClusterError(
            f"no Kubernetes cluster configured: KUBECONFIG names a missing file: {names}; "
            "fix or unset KUBECONFIG, or run locally with --backend local"
        )


def cluster_configured(context: str | None = None) -> bool:
    """True when a kube context (or in-cluster config) is available; nothing is contacted.
    Raises when ``KUBECONFIG`` names a missing file (:func:`check_kubeconfig`)."""
    check_kubeconfig(context)
    return current_context(context) is not None or in_cluster()


def load_target(namespace: str | None = None, context: str | None = None) -> ClusterTarget:
    """Load the client configuration; namespace: given, else the context's, else default."""
    from kubernetes import client, config

    check_kubeconfig(context)
    if current_context(context) is not None:
        config_file = os.pathsep.join(str(p) for p in kubeconfig_paths())
        configuration = client.Configuration()
        config.load_kube_config(
            config_file=config_file, context=context, client_configuration=configuration
        )
        contexts, active = config.list_kube_config_contexts(config_file=config_file)
        chosen = next((c for c in contexts if c["name"] == context), active) if context else active
        default_ns = (chosen.get("context") or {}).get("namespace") or "default"
        return ClusterTarget(
            configuration, namespace or default_ns, chosen["name"], configuration.host
        )
    if in_cluster():
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)
        default_ns = (SERVICE_ACCOUNT / "namespace").read_text().strip() or "default"
        return ClusterTarget(configuration, namespace or default_ns, None, configuration.host)
    where = ", ".join(str(p) for p in kubeconfig_paths())
    wanted = f"context {context!r}" if context else "a current context"
    raise NoClusterError(
        f"no Kubernetes cluster configured: no kubeconfig with {wanted} ({where}) and not "
        "in a pod; set KUBECONFIG or --context, or run locally with --backend local"
    )
