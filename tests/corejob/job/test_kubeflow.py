"""corejob's Kubeflow names equal the operator SDK's and what the chart renders."""

from __future__ import annotations

from kubeflow.training.constants import constants as sdk

from corejob.job import kubeflow
from tests.chart.conftest import render


def test_pod_labels_are_the_operators() -> None:
    assert kubeflow.JOB_NAME_LABEL == sdk.JOB_NAME_LABEL
    assert kubeflow.REPLICA_TYPE_LABEL == sdk.REPLICA_TYPE_LABEL
    assert kubeflow.REPLICA_INDEX_LABEL == sdk.REPLICA_INDEX_LABEL
    assert kubeflow.JOB_ROLE_LABEL == sdk.JOB_ROLE_LABEL


def test_api_names_and_container_are_the_operators() -> None:
    assert f"{sdk.GROUP}/{sdk.VERSION}" == kubeflow.JOB_API_VERSION
    assert (kubeflow.JOB_KIND, kubeflow.JOB_PLURAL) == (sdk.PYTORCHJOB_KIND, sdk.PYTORCHJOB_PLURAL)
    assert kubeflow.CONTAINER_NAME == sdk.PYTORCHJOB_CONTAINER
    assert tuple(t.lower() for t in kubeflow.REPLICA_TYPES) == tuple(sdk.PYTORCHJOB_REPLICA_TYPES)


def test_the_chart_renders_these_names() -> None:
    job = render(workers=1)
    assert (job["apiVersion"], job["kind"]) == (kubeflow.JOB_API_VERSION, kubeflow.JOB_KIND)
    assert list(job["spec"]["pytorchReplicaSpecs"]) == list(kubeflow.REPLICA_TYPES)
    for replica in job["spec"]["pytorchReplicaSpecs"].values():
        (trainer,) = kubeflow.trainer_containers(replica["template"]["spec"])
        assert trainer["name"] == kubeflow.CONTAINER_NAME


def test_pod_selector() -> None:
    assert kubeflow.pod_selector("j") == "training.kubeflow.org/job-name=j"
    assert kubeflow.pod_selector("j", "Master").endswith(
        ",training.kubeflow.org/replica-type=master"
    )
