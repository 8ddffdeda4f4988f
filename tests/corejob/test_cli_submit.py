"""submit / render / identity against the emulated API server."""

from __future__ import annotations

import json

import yaml

from corejob.errors import ExitCode
from corejob.job.spec import JobRequest, build_job
from corejob.job.state import LABEL_CONFIG_HASH
from tests.corejob.conftest import Background
from tests.support.wait import wait_until

SERVER_FIELDS = ("uid", "resourceVersion", "creationTimestamp", "generation")


def without_server_fields(job: dict) -> dict:
    metadata = {k: v for k, v in job["metadata"].items() if k not in SERVER_FIELDS}
    return {k: v for k, v in dict(job, metadata=metadata).items() if k != "status"}


def created_jobs(cluster) -> list:
    return [r for r in cluster.controller_requests() if r.method.value == "POST"]


def test_submit_creates_exactly_the_rendered_object(cluster, corejob):
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
    assert created_jobs(cluster) == []

    result = corejob("submit", *args)

    assert result.code == 0, result.err
    expected = build_job(
        JobRequest("res_small", "synthetic_tiny", workers=2, values={"trainer": {"maxEpochs": 3}}),
        "team-a",
    )
    name = expected["metadata"]["name"]
    assert f"created job {name}" in result.out
    assert yaml.safe_load(dry.out) == expected
    assert [json.loads(r.body) for r in created_jobs(cluster)] == [expected]
    stored = cluster.job(name)
    assert without_server_fields(stored) == expected
    assert stored["metadata"]["labels"][LABEL_CONFIG_HASH] == name.rsplit("-", 1)[1]
    assert len(name) <= 50 and name.startswith("res-small-synthetic-tiny-")


def test_resubmit_does_not_duplicate_and_a_changed_config_gets_a_new_name(cluster, corejob):
    first = corejob("submit", "-m", "res_small", "-d", "synthetic_tiny")
    cluster.operator.set_condition(first.out.split()[2], "Running")
    again = corejob("submit", "-m", "res_small", "-d", "synthetic_tiny")
    changed = corejob(
        "submit", "-m", "res_small", "-d", "synthetic_tiny", "--set", "trainer.seed=7"
    )

    assert (first.code, again.code, changed.code) == (0, 0, 0)
    name = first.out.split()[2]
    assert f"job {name} already exists in namespace team-a (state Running)" in again.out
    assert len(created_jobs(cluster)) == 2
    names = {job["metadata"]["name"] for job in cluster.jobs()}
    assert len(names) == 2 and name in names


def test_unknown_model_lists_the_available_ones(cluster, corejob):
    result = corejob("submit", "-m", "res_huge", "-d", "synthetic_tiny")
    assert result.code == ExitCode.USAGE
    assert "--model_config: res_huge: unknown model config; available:" in result.err
    assert "res_small" in result.err and "Traceback" not in result.err
    bad_dataset = corejob("submit", "-m", "res_small", "-d", "mnist")
    assert bad_dataset.code == ExitCode.USAGE and "synthetic_tiny" in bad_dataset.err
    assert created_jobs(cluster) == []


def test_invalid_set_is_a_usage_error(cluster, corejob):
    missing_equals = corejob("submit", "-m", "res_small", "--set", "trainer.maxEpochs")
    unknown_key = corejob("submit", "-m", "res_small", "--set", "trainer.maxEpoch=3")
    assert missing_equals.code == unknown_key.code == ExitCode.USAGE
    assert "invalid --set 'trainer.maxEpochs'" in missing_equals.err
    assert "maxEpoch" in unknown_key.err
    assert created_jobs(cluster) == []


def test_gpus_beyond_any_node_are_refused_before_submitting(cluster, corejob):
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "gpu-node-1"},
            "status": {"allocatable": {"nvidia.com/gpu": "4", "cpu": "32"}}}  # fmt: skip
    assert cluster.operator.request("POST", "/api/v1/nodes", node)[0] == 201
    result = corejob("submit", "-m", "res_small", "--gpus", "8")
    assert result.code == ExitCode.USAGE
    assert "8 nvidia.com/gpu per pod but the largest node has 4" in result.err
    assert created_jobs(cluster) == []
    assert corejob("submit", "-m", "res_small", "--gpus", "4").code == 0


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


def test_submit_wait_returns_the_jobs_outcome(cluster, corejob):
    waiting = Background("submit", "-m", "res_small", "-d", "synthetic_tiny", "--wait")
    (job,) = wait_until(cluster.jobs, 15, "submit --wait to create its job")
    cluster.operator.set_condition(job["metadata"]["name"], "Running")
    cluster.operator.set_condition(job["metadata"]["name"], "Succeeded")
    assert waiting.join() == ExitCode.OK

    failing = Background("submit", "-m", "res_small", "-d", "synthetic_mixed", "--wait")
    (mixed,) = wait_until(
        lambda: [j for j in cluster.jobs() if "mixed" in j["metadata"]["name"]],
        15,
        "submit --wait to create the synthetic_mixed job",
    )
    cluster.operator.set_condition(mixed["metadata"]["name"], "Failed", "PyTorchJobFailed", "oom")
    assert failing.join() == ExitCode.JOB_FAILED


def test_submit_wait_gives_up_after_the_pending_timeout(cluster, corejob):
    result = corejob("submit", "-m", "res_small", "--wait", "--pending-timeout", "0s")
    assert result.code == ExitCode.PENDING_TIMEOUT
    assert "is still pending: the operator has created no pods yet" in result.err


def test_context_and_namespace_come_from_the_kubeconfig(cluster, corejob):
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    other = {"name": "other", "context": {"cluster": "emulated", "user": "alice",
                                          "namespace": "team-b"}}  # fmt: skip
    config["contexts"].append(other)
    cluster.kubeconfig.write_text(yaml.safe_dump(config))
    assert corejob("submit", "-m", "res_small", "--context", "other").code == 0
    assert corejob("submit", "-m", "res_small", "-n", "team-c").code == 0
    namespaces = sorted(r.url.path.split("/")[5] for r in created_jobs(cluster))
    assert namespaces == ["team-b", "team-c"]
    missing = corejob("status", "--context", "nope", "--backend", "kubernetes")
    assert missing.code == ExitCode.NO_CLUSTER and "context 'nope'" in missing.err


def test_the_installed_command_talks_to_the_cluster(cluster):
    import os
    import subprocess
    import sys

    env = dict(os.environ, KUBECONFIG=str(cluster.kubeconfig))
    command = [sys.executable, "-m", "corejob"]
    submitted = subprocess.run([*command, "submit", "-m", "res_small"], env=env,
                               capture_output=True, text=True, timeout=60)  # fmt: skip
    status = subprocess.run([*command, "status"], env=env, capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    assert status.returncode == 0 and "res_small  synthetic_mixed" in status.stdout


def test_kubectl_apply_of_the_rendered_yaml_is_the_same_job(cluster, corejob, tmp_path):
    import subprocess

    manifest = tmp_path / "job.yaml"
    manifest.write_text(corejob("render", "-m", "res_small", "-n", "team-a").out)
    applied = subprocess.run(
        ["kubectl", "--kubeconfig", str(cluster.kubeconfig), "apply", "--validate=false",
         "-f", str(manifest)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert applied.returncode == 0, applied.stderr
    resubmitted = corejob("submit", "-m", "res_small")
    assert resubmitted.code == 0 and "already exists" in resubmitted.out
    assert len(cluster.jobs()) == 1
