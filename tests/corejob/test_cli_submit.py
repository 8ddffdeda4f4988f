"""submit / render / identity against the real API server (tests/support/kube_real.py),
as the restricted user holding only the project's controller Role."""

from __future__ import annotations

import yaml

from corejob.errors import ExitCode
from corejob.job.spec import JobRequest, build_job
from corejob.job.state import LABEL_CONFIG_HASH
from tests.corejob.conftest import Background
from tests.support.kube_server import USER
from tests.support.wait import wait_until

SERVER_FIELDS = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields")


def without_server_fields(job: dict) -> dict:
    metadata = {k: v for k, v in job["metadata"].items() if k not in SERVER_FIELDS}
    return {k: v for k, v in dict(job, metadata=metadata).items() if k != "status"}


def created_jobs(kube) -> list:
    """The job bodies the CLI created (from the server's audit log, which shows the unset
    creationTimestamp as null)."""
    bodies = [event["requestObject"] for event in kube.requests("create", "pytorchjobs")]
    for body in bodies:
        if body["metadata"].get("creationTimestamp", "") is None:
            del body["metadata"]["creationTimestamp"]
    return bodies


def test_submit_creates_exactly_the_rendered_object(kube, corejob, monkeypatch):
    monkeypatch.setenv("COREJOB_VALUES", "")  # no site defaults: the chart's own
    args = [
        "-m",
        "res_small",
        "-d",
        "synthetic_tiny",
        "--workers",
        "2",
        "--set",
        "trainer.maxEpochs=3",
    ]
    dry = corejob("submit", *args, "--dry-run")
    assert dry.code == 0
    assert created_jobs(kube) == []

    result = corejob("submit", *args)

    assert result.code == 0, result.err
    expected = build_job(
        JobRequest("res_small", "synthetic_tiny", workers=2, values={"trainer": {"maxEpochs": 3}}),
        kube.name,
    )
    name = expected["metadata"]["name"]
    assert f"created job {name}" in result.out
    assert yaml.safe_load(dry.out) == expected
    assert created_jobs(kube) == [expected]
    stored = kube.job(name)
    # The server keeps exactly what was sent: the CRD's schema prunes nothing of it.
    assert without_server_fields(stored) == expected
    assert stored["metadata"]["labels"][LABEL_CONFIG_HASH] == name.rsplit("-", 1)[1]
    assert len(name) <= 50 and name.startswith("res-small-synthetic-tiny-")


def test_resubmit_does_not_duplicate_and_a_changed_config_gets_a_new_name(kube, corejob):
    first = corejob("submit", "-m", "res_small", "-d", "synthetic_tiny")
    kube.set_condition(first.out.split()[2], "Running")
    again = corejob("submit", "-m", "res_small", "-d", "synthetic_tiny")
    changed = corejob(
        "submit", "-m", "res_small", "-d", "synthetic_tiny", "--set", "trainer.seed=7"
    )

    assert (first.code, again.code, changed.code) == (0, 0, 0)
    name = first.out.split()[2]
    assert f"job {name} already exists in namespace {kube.name} (state Running)" in again.out
    assert len(created_jobs(kube)) == 2
    names = {job["metadata"]["name"] for job in kube.jobs()}
    assert len(names) == 2 and name in names


def test_unknown_model_lists_the_available_ones(kube, corejob):
    result = corejob("submit", "-m", "res_huge", "-d", "synthetic_tiny")
    assert result.code == ExitCode.USAGE
    assert "--model_config: res_huge: unknown model config; available:" in result.err
    assert "res_small" in result.err and "Traceback" not in result.err
    bad_dataset = corejob("submit", "-m", "res_small", "-d", "mnist")
    assert bad_dataset.code == ExitCode.USAGE and "synthetic_tiny" in bad_dataset.err
    assert created_jobs(kube) == []


def test_invalid_set_is_a_usage_error(kube, corejob):
    missing_equals = corejob("submit", "-m", "res_small", "--set", "trainer.maxEpochs")
    unknown_key = corejob("submit", "-m", "res_small", "--set", "trainer.maxEpoch=3")
    assert missing_equals.code == unknown_key.code == ExitCode.USAGE
    assert "invalid --set 'trainer.maxEpochs'" in missing_equals.err
    assert "maxEpoch" in unknown_key.err
    assert created_jobs(kube) == []


def test_gpus_beyond_any_node_are_refused_before_submitting(kube, corejob, monkeypatch):
    # Nodes are cluster-scoped: only a user who may list them (here the admin) gets the check.
    monkeypatch.setenv("KUBECONFIG", str(kube.admin_kubeconfig))
    node = f"gpu-node-{kube.name}"
    kube.cluster.ok("POST", "/api/v1/nodes", {"metadata": {"name": node}})
    kube.cluster.ok("PATCH", f"/api/v1/nodes/{node}/status",
                    {"status": {"allocatable": {"nvidia.com/gpu": "4", "cpu": "32"}}},
                    content_type="application/merge-patch+json")  # fmt: skip
    try:
        result = corejob("submit", "-m", "res_small", "--gpus", "8")
        assert result.code == ExitCode.USAGE
        assert "8 nvidia.com/gpu per pod but the largest node has 4" in result.err
        assert kube.jobs() == []
        assert corejob("submit", "-m", "res_small", "--gpus", "4").code == 0
    finally:
        kube.cluster.ok("DELETE", f"/api/v1/nodes/{node}")


def test_render_prints_the_job_yaml_without_a_cluster(tmp_path, monkeypatch, corejob):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    result = corejob("render", "-m", "res_small", "-d", "synthetic_tiny", "-n", "lab")
    job = yaml.safe_load(result.out)
    assert result.code == 0 and job["kind"] == "PyTorchJob"
    assert job["metadata"]["namespace"] == "lab"


def test_no_kube_context_is_its_own_error(tmp_path, monkeypatch, corejob):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    result = corejob("status", "--backend", "kubernetes")
    assert result.code == ExitCode.NO_CLUSTER
    assert "no Kubernetes cluster configured" in result.err


def test_submit_wait_returns_the_jobs_outcome(kube, corejob):
    waiting = Background("submit", "-m", "res_small", "-d", "synthetic_tiny", "--wait")
    (job,) = wait_until(kube.jobs, 15, "submit --wait to create its job")
    kube.set_condition(job["metadata"]["name"], "Running")
    kube.set_condition(job["metadata"]["name"], "Succeeded")
    assert waiting.join() == ExitCode.OK

    failing = Background("submit", "-m", "res_small", "-d", "synthetic_mixed", "--wait")
    (mixed,) = wait_until(
        lambda: [j for j in kube.jobs() if "mixed" in j["metadata"]["name"]],
        15,
        "submit --wait to create the synthetic_mixed job",
    )
    kube.set_condition(mixed["metadata"]["name"], "Failed", "PyTorchJobFailed", "oom")
    assert failing.join() == ExitCode.JOB_FAILED


def test_submit_wait_gives_up_after_the_pending_timeout(kube, corejob):
    result = corejob("submit", "-m", "res_small", "--wait", "--pending-timeout", "0s")
    assert result.code == ExitCode.PENDING_TIMEOUT
    assert "is still pending: the operator has created no pods yet" in result.err


def test_context_and_namespace_come_from_the_kubeconfig(kube, corejob, tmp_path, monkeypatch):
    team_b, team_c = kube.cluster.new_namespace("b"), kube.cluster.new_namespace("c")
    config = yaml.safe_load(kube.kubeconfig.read_text())
    other = {"name": "other", "context": dict(config["contexts"][0]["context"],
                                              namespace=team_b.name)}  # fmt: skip
    config["contexts"].append(other)
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    assert corejob("submit", "-m", "res_small", "--context", "other").code == 0
    assert corejob("submit", "-m", "res_small", "-n", team_c.name).code == 0
    assert (len(team_b.jobs()), len(team_c.jobs()), len(kube.jobs())) == (1, 1, 0)
    missing = corejob("status", "--context", "nope", "--backend", "kubernetes")
    assert missing.code == ExitCode.NO_CLUSTER and "context 'nope'" in missing.err


def test_the_installed_command_talks_to_the_cluster(kube):
    import os
    import subprocess
    import sys

    env = dict(os.environ, KUBECONFIG=str(kube.kubeconfig))
    command = [sys.executable, "-m", "corejob"]
    submitted = subprocess.run([*command, "submit", "-m", "res_small"], env=env,
                               capture_output=True, text=True, timeout=60)  # fmt: skip
    status = subprocess.run([*command, "status"], env=env, capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    assert status.returncode == 0 and "res_small  synthetic_mixed" in status.stdout


def test_kubectl_create_of_the_rendered_yaml_is_the_same_job(kube, corejob, tmp_path):
    """kubectl 1.35 validates the rendered YAML against the server's published schema
    (--validate=strict) and creates it as the restricted user; corejob sees its own job."""
    manifest = tmp_path / "job.yaml"
    manifest.write_text(corejob("render", "-m", "res_small", "-n", kube.name).out)
    kube.cluster.kubectl("create", "--validate=strict", "-f", str(manifest), user=USER,
                         namespace=kube.name)  # fmt: skip
    resubmitted = corejob("submit", "-m", "res_small")
    assert resubmitted.code == 0 and "already exists" in resubmitted.out
    assert len(kube.jobs()) == 1
