"""apiFlavor trainjob: the same job as the PyTorchJob, as a TrainJob the Trainer v2.3 CRDs
accept strictly, and a TrainingRuntime carrying the PyTorchJob's very pod template."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from corejob.job.flavors.replicas import replica_specs
from corejob.job.flavors.trainjob_rules import carried_runtime
from corejob.job.render import RenderError, render_job, render_objects
from corejob.job.validation import validate_job
from tests.chart.conftest import render, values

CASES = {
    "single": {"workers": 0},
    "cpu-ddp": {"workers": 3, "data": {"existingClaim": "d", "readOnly": True, "subPath": "v1"},
                "checkpoints": {"existingClaim": "c"}, "serviceAccountName": "trainer"},
    "gpu-torchrun": {"workers": 1, "nprocPerNode": 4, "gpusPerReplica": 4,
                     "image": {"pullSecrets": ["ghcr"]}, "wandb": {"mode": "online",
                     "apiKeySecret": {"name": "wandb"}}, "env": [{"name": "X", "value": "1"}],
                     "nodeSelector": {"gpu": "h100"}, "podLabels": {"team": "v1"},
                     "tolerations": [{"key": "gpu", "operator": "Exists"}]},
}  # fmt: skip
# Pod fields a runtime patch carries; the rest stay the runtime's (see the chart README).
PATCHED_POD_FIELDS = (
    "volumes",
    "securityContext",
    "nodeSelector",
    "tolerations",
    "affinity",
    "serviceAccountName",
    "imagePullSecrets",
    "terminationGracePeriodSeconds",
)
CONTAINER_FIELDS = (
    "image",
    "command",
    "args",
    "env",
    "resources",
    "volumeMounts",
    "securityContext",
)


def trainjob(**overrides: Any) -> list[dict[str, Any]]:
    return render_objects(values(apiFlavor="trainjob", **overrides))


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_the_trainjob_is_the_pytorchjob_in_trainer_v2s_terms(case: str) -> None:
    pytorchjob = render(**CASES[case])
    (job,) = trainjob(**CASES[case])
    assert (job["apiVersion"], job["kind"]) == ("trainer.kubeflow.org/v1alpha1", "TrainJob")
    assert validate_job(job) == [] and validate_job(pytorchjob) == []
    assert job["metadata"] == pytorchjob["metadata"]
    assert job["spec"]["trainer"]["numNodes"] == CASES[case]["workers"] + 1
    assert job["spec"]["trainer"]["numProcPerNode"] == CASES[case].get("nprocPerNode", 1)
    assert job["spec"]["runtimeRef"] == {"apiGroup": "trainer.kubeflow.org",
                                         "kind": "ClusterTrainingRuntime",
                                         "name": "torch-distributed"}  # fmt: skip
    expected = pytorchjob["spec"]["pytorchReplicaSpecs"]
    view = replica_specs(job)
    assert set(view) == set(expected)
    for role, spec in expected.items():
        assert view[role]["replicas"] == spec["replicas"]
        pod, got = spec["template"], view[role]["template"]
        assert got["metadata"] == pod["metadata"]
        for field in PATCHED_POD_FIELDS:
            assert got["spec"].get(field) == pod["spec"].get(field), field
        (want,), (have,) = pod["spec"]["containers"], got["spec"]["containers"]
        for field in CONTAINER_FIELDS:
            assert have.get(field) == want.get(field), field
        assert have["name"] == "node"


def test_the_chart_rendered_runtime_has_the_whole_pod_template() -> None:
    pytorchjob = render(workers=2, priorityClassName="research")
    job, runtime = trainjob(workers=2, priorityClassName="research",
                            trainJob={"runtime": {"create": True}})  # fmt: skip
    assert validate_job(runtime) == [] and validate_job(job) == []
    name = job["metadata"]["name"]
    assert job["spec"]["runtimeRef"]["kind"] == "TrainingRuntime"
    assert runtime["metadata"]["name"] == job["spec"]["runtimeRef"]["name"] == name
    assert runtime["spec"]["mlPolicy"] == {"numNodes": 3, "torch": {}}
    (node,) = runtime["spec"]["template"]["spec"]["replicatedJobs"]
    assert node["template"]["metadata"]["labels"] == {
        "trainer.kubeflow.org/trainjob-ancestor-step": "trainer"
    }
    expected = copy.deepcopy(pytorchjob["spec"]["pytorchReplicaSpecs"]["Master"]["template"])
    container = expected["spec"]["containers"][0]
    for field in ("command", "args", "env", "ports", "resources"):  # the TrainJob's
        container.pop(field, None)
    container["name"] = "node"
    expected["spec"]["restartPolicy"] = "Never"
    assert node["template"]["spec"]["template"] == expected
    # restartPolicy ExitCode: 1-127 fail the TrainJob at once, the rest restart the gang
    rule = node["template"]["spec"]["podFailurePolicy"]["rules"][0]
    assert rule["onExitCodes"]["values"] == list(range(1, 128))
    failure = runtime["spec"]["template"]["spec"]["failurePolicy"]
    assert failure["maxRestarts"] == 3 and failure["rules"][0]["action"] == "FailJobSet"
    # what the controller submits: the TrainJob carrying that runtime, checked with it
    carried = render_job(values(apiFlavor="trainjob", workers=2, priorityClassName="research",
                                trainJob={"runtime": {"create": True}}))  # fmt: skip
    assert carried_runtime(carried) == runtime and validate_job(carried) == []
    broken = copy.deepcopy(carried)
    broken["spec"]["runtimeRef"]["name"] = "other"
    assert any("must name the carried TrainingRuntime" in p for p in validate_job(broken))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda j: j["spec"]["trainer"].update(numNode=2), "'numNode' was unexpected"),
        (lambda j: j["spec"].update(runtime={"name": "x"}), "'runtime' was unexpected"),
        (
            lambda j: j["spec"]["trainer"]["env"].append({"name": "PET_NNODES", "value": "9"}),
            "must not set ['PET_NNODES']",
        ),
        (lambda j: j["spec"].update(managedBy="me"), "spec.managedBy: 'me' is not one of"),
        (lambda j: j["metadata"].update(name="A" * 3), "is not a DNS-1035 label"),
    ],
)
def test_strict_validation_catches_what_the_trainer_would_reject(change, expected) -> None:
    (job,) = trainjob()
    change(job)
    assert any(expected in problem for problem in validate_job(job)), validate_job(job)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"elasticPolicy": {"enabled": True}}, "Kubeflow Trainer v2 (apiFlavor trainjob) has no"),
        ({"apiFlavor": "mpijob"}, "at '/apiFlavor'"),
        ({"trainJob": {"runtime": {"kind": "Runtime"}}}, "at '/trainJob/runtime/kind'"),
    ],
)
def test_bad_trainjob_values_fail_in_one_line(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(RenderError, match=message.replace("(", r"\(").replace(")", r"\)")):
        render_objects(values(**{"apiFlavor": "trainjob", **overrides}))


def test_a_queued_trainjob_carries_kueues_label_and_is_created_suspended() -> None:
    (job,) = trainjob(queueName="gpu-queue")
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu-queue"
    assert job["spec"]["suspend"] is True and validate_job(job) == []
    (plain,) = trainjob()
    assert "kueue.x-k8s.io/queue-name" not in plain["metadata"]["labels"]
    assert plain["spec"]["suspend"] is False
