"""Fixtures: a fresh emulated cluster per test and the real CLI pointed at it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from corejob.cli import main
from tests.support.kube_cluster import FakeCluster, fake_cluster
from tests.support.kube_real import KubeNamespace


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCluster]:
    """An API server on 127.0.0.1 with the PyTorchJob CRD; KUBECONFIG points at it."""
    with fake_cluster(tmp_path) as fake:
        monkeypatch.setenv("KUBECONFIG", str(fake.kubeconfig))
        monkeypatch.setenv("COREJOB_API_BACKOFF_S", "0.05")
        monkeypatch.chdir(tmp_path)
        yield fake


@pytest.fixture
def kube(
    real_namespace: KubeNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> KubeNamespace:
    """A fresh namespace on the real API server; KUBECONFIG: the restricted user there."""
    monkeypatch.setenv("COREJOB_API_BACKOFF_S", "0.05")
    monkeypatch.chdir(tmp_path)
    return real_namespace


@pytest.fixture
def corejob(capsys: pytest.CaptureFixture[str]):
    """Run ``corejob ARGS`` in-process (the real ``main``) and capture its output."""

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


class Background:
    """``corejob`` running in a thread (sweeps, --wait) while the test plays the operator."""

    def __init__(self, *args: str) -> None:
        self.code: int | None = None
        self.thread = threading.Thread(target=self._run, args=(list(args),), daemon=True)
        self.thread.start()

    def _run(self, args: list[str]) -> None:
        self.code = main(args)

    def join(self, timeout: float = 30) -> int:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "corejob did not finish"
        assert self.code is not None
        return self.code
