"""API failures become one-line errors with their own exit codes (and retries for 5xx)."""

from __future__ import annotations

import pytest
from kubernetes.client import ApiException

from corejob.backends.kubernetes.api import KubeApi
from corejob.backends.kubernetes.api_errors import retry_delay
from corejob.errors import ExitCode

JOBS = r"/apis/kubeflow\.org/v1/namespaces/team-a/pytorchjobs"


def submit(corejob):
    return corejob("submit", "-m", "res_small", "-d", "synthetic_tiny")


def test_403_names_the_missing_verb_and_resource(cluster, corejob):
    cluster.emulator.inject_fault(
        "POST", JOBS, 403,
        'pytorchjobs.kubeflow.org is forbidden: User "alice" cannot create resource',
    )  # fmt: skip
    result = submit(corejob)
    assert result.code == ExitCode.FORBIDDEN
    assert "you may not 'create' pytorchjobs.kubeflow.org" in result.err
    assert "namespace 'team-a'" in result.err and 'User "alice"' in result.err
    errors = [line for line in result.err.splitlines() if not line.startswith("corejob: warn")]
    assert len(errors) == 1 and "Traceback" not in result.err


def test_401_asks_to_refresh_credentials(cluster, corejob):
    cluster.emulator.inject_fault("GET", JOBS, 401, "Unauthorized", times=10)
    result = corejob("status")
    assert result.code == ExitCode.FORBIDDEN and "refresh them" in result.err


def test_missing_crd_says_how_to_install_the_operator(cluster, corejob):
    cluster.call(cluster.emulator.resources.__delitem__, "kubeflow.org/v1/pytorchjobs")
    result = corejob(
        "submit", "-m", "res_small", "-d", "synthetic_tiny", "--set=apiFlavor=pytorchjob"
    )
    assert result.code == ExitCode.NOT_INSTALLED
    assert "training operator's CRD is not installed" in result.err
    assert "training-operator.git/manifests/overlays/standalone?ref=v1.9" in result.err


def test_409_on_create_is_a_conflict(cluster, corejob):
    cluster.emulator.inject_fault("POST", JOBS, 409, "Operation cannot be fulfilled: conflict")
    result = submit(corejob)
    assert result.code == ExitCode.CONFLICT
    assert "conflict on pytorchjobs.kubeflow.org/res-small-synthetic-tiny-" in result.err


def test_422_shows_the_servers_field_message(cluster, corejob):
    message = (
        'PyTorchJob.kubeflow.org "x" is invalid: spec.pytorchReplicaSpecs.Master.replicas: '
        "Invalid value: 2: must be 1"
    )
    cluster.emulator.inject_fault("POST", JOBS, 422, message)
    result = submit(corejob)
    assert result.code == ExitCode.REJECTED
    assert "the API server rejected" in result.err
    assert "spec.pytorchReplicaSpecs.Master.replicas: Invalid value: 2: must be 1" in result.err


def test_transient_500_is_retried(cluster, corejob):
    cluster.emulator.inject_fault("POST", JOBS, 500, "etcdserver: leader changed", times=2)
    result = submit(corejob)
    assert result.code == 0, result.err
    posts = [r for r in cluster.controller_requests() if r.method.value == "POST"]
    assert len(posts) == 3


@pytest.mark.parametrize("status", [500, 503])
def test_persistent_5xx_gives_up_with_a_clear_error(cluster, corejob, status):
    cluster.emulator.inject_fault("GET", JOBS, status, "etcdserver: request timed out", times=99)
    result = corejob("status")
    assert result.code == ExitCode.UNAVAILABLE
    assert "gave up after 4 attempts" in result.err and "request timed out" in result.err


def test_unreachable_api_is_unavailable(cluster, corejob, monkeypatch, tmp_path):
    kubeconfig = tmp_path / "dead"
    kubeconfig.write_text(cluster.kubeconfig.read_text().replace(cluster.url, "http://127.0.0.1:9"))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    result = corejob("status")
    assert result.code == ExitCode.UNAVAILABLE
    assert "cannot reach the Kubernetes API at http://127.0.0.1:9" in result.err


class FakeTime:
    """The API client's clock and sleep: a minute of retries passes in no time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time(monkeypatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(KubeApi, "clock", staticmethod(fake.clock))
    monkeypatch.setattr(KubeApi, "sleep", staticmethod(fake.sleep))
    return fake


def test_429_waits_as_long_as_retry_after_says(cluster, corejob, fake_time):
    """Before: retried at 0.5/1/2 s whatever the header said, gave up after 3.5 s (exit 8)."""
    cluster.emulator.inject_fault("POST", JOBS, 429, "too many requests", times=5,
                                  headers={"Retry-After": "5"})  # fmt: skip
    result = submit(corejob)
    assert result.code == 0, result.err
    assert fake_time.sleeps == [5.0] * 5
    posts = [r for r in cluster.controller_requests() if r.method.value == "POST"]
    assert len(posts) == 6


def test_a_create_keeps_trying_for_more_than_a_minute(cluster, corejob, fake_time):
    cluster.emulator.inject_fault("POST", JOBS, 503, "apiserver is shutting down", times=999)
    result = submit(corejob)
    assert result.code == ExitCode.UNAVAILABLE
    assert 60 <= fake_time.now <= 90
    assert "apiserver is shutting down" in result.err and "gave up after" in result.err
    # ...and it would have succeeded had the server recovered within that minute.
    cluster.emulator.faults.clear()
    cluster.emulator.inject_fault("POST", JOBS, 503, "apiserver is shutting down", times=12)
    fake_time.now = 0.0
    assert submit(corejob).code == 0 and fake_time.now > 30


@pytest.mark.parametrize(
    ("header", "backoff", "elapsed", "expected"),
    [("5", 0.5, 0.0, 5.0), (None, 0.5, 0.0, 0.5), ("120", 1.0, 0.0, None),
     ("3", 1.0, 88.0, None), ("Wed, 21 Oct 2015 07:28:00 GMT", 2.0, 0.0, 2.0)],
)  # fmt: skip
def test_retry_delay_follows_retry_after_within_the_budget(header, backoff, elapsed, expected):
    error = ApiException(status=429, reason="Too Many Requests")
    error.headers = {"Retry-After": header} if header else {}
    assert retry_delay(error, backoff, elapsed, budget_s=90) == expected


def test_an_admission_403_is_a_rejection_with_the_servers_message_first(cluster, corejob):
    message = ('admission webhook "images.policy.example" denied the request: images must '
               "come from registry.lab")  # fmt: skip
    cluster.emulator.inject_fault("POST", JOBS, 403, message)
    result = submit(corejob)
    assert result.code == ExitCode.REJECTED
    error = result.err.splitlines()[-1]
    assert error.startswith(f"corejob: error: {message}: an admission policy of the cluster")
    assert "Role" not in error
