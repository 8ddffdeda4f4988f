"""Backends run a rendered PyTorchJob: on Kubernetes, as local processes, or as containers.

They share one interface (:class:`corejob.backends.base.Backend`) and differ only in how
they run the same job object. ``make_backend`` imports lazily so that the Kubernetes
client is not needed for a local run and vice versa.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from corejob.backends.base import Backend

BACKENDS: dict[str, str] = {
    "kubernetes": "corejob.backends.kubernetes.backend:KubernetesBackend",
    "local": "corejob.backends.local.backend:LocalBackend",
    "container": "corejob.backends.container.backend:ContainerBackend",
}


def make_backend(name: str, **options: Any) -> Backend:
    """Instantiate the backend called ``name`` with backend-specific ``options``."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}")
    module_name, class_name = BACKENDS[name].split(":")
    backend_class = getattr(import_module(module_name), class_name)
    return backend_class(**options)
