"""Every backend implements the whole Backend protocol: no capability is probed with getattr."""

from __future__ import annotations

import inspect

import pytest

from corejob.backends import BACKENDS, make_backend
from corejob.backends.base import Backend
from corejob.backends.container.backend import ContainerBackend
from corejob.backends.kubernetes.backend import KubernetesBackend
from corejob.backends.local.backend import LocalBackend

PROTOCOL_METHODS = sorted(
    name
    for name, member in vars(Backend).items()
    if inspect.isfunction(member) and not name.startswith("_")
)


@pytest.mark.parametrize("backend_class", [KubernetesBackend, LocalBackend, ContainerBackend])
def test_backend_has_every_protocol_method_with_its_parameters(backend_class) -> None:
    assert {"submit", "track", "exit_codes", "node_gpus"} <= set(PROTOCOL_METHODS)
    for name in PROTOCOL_METHODS:
        method = getattr(backend_class, name)
        expected = list(inspect.signature(getattr(Backend, name)).parameters)
        assert list(inspect.signature(method).parameters)[: len(expected)] == expected, name
    assert "namespace" in Backend.__annotations__


def test_local_backend_answers_the_optional_capabilities(tmp_path) -> None:
    backend = make_backend("local", runs_dir=tmp_path)
    assert backend.namespace is None and backend.node_gpus() is None
    assert backend.exit_codes("absent") == []
    with backend.track({"corejob.dev/sweep": "s"}) as tracker:
        assert tracker.snapshot() == {}


def test_backend_registry_names_every_backend() -> None:
    assert set(BACKENDS) == {"kubernetes", "local", "container"}
