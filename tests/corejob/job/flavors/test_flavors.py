"""Which flavour a job is and which one to submit as, from a cluster's CRDs."""

from __future__ import annotations

import pytest

from corejob.job import kubeflow
from corejob.job.flavors import FLAVORS, PYTORCHJOB, TRAINJOB, choose_flavor, flavor_of


@pytest.mark.parametrize(
    ("installed", "configured", "chosen"),
    [
        ({"trainjob"}, None, "trainjob"),
        ({"pytorchjob"}, None, "pytorchjob"),
        ({"pytorchjob", "trainjob"}, None, "pytorchjob"),  # both: the chart's default
        (set(), None, None),  # neither: the caller names both CRDs
        ({"pytorchjob"}, "trainjob", "trainjob"),  # asked for: never second-guessed
    ],
)
def test_choice_from_discovery(installed: set[str], configured: str | None, chosen) -> None:
    assert choose_flavor(installed, configured) == chosen


def test_flavours_name_the_kubeflow_apis() -> None:
    assert flavor_of({"kind": "TrainJob"}) is TRAINJOB and flavor_of({}) is PYTORCHJOB
    assert TRAINJOB.resource == "trainjobs.trainer.kubeflow.org"
    assert (TRAINJOB.group, TRAINJOB.version) == ("trainer.kubeflow.org", "v1alpha1")
    assert PYTORCHJOB.resource == "pytorchjobs.kubeflow.org"
    assert set(FLAVORS) == {"pytorchjob", "trainjob"}
    assert TRAINJOB.container == kubeflow.TRAINJOB_CONTAINER_NAME == "node"


def test_trainjob_selectors_and_master_address() -> None:
    assert kubeflow.trainjob_pod_selector("j", 0) == (
        "jobset.sigs.k8s.io/jobset-name=j,jobset.sigs.k8s.io/replicatedjob-name=node,"
        "batch.kubernetes.io/job-completion-index=0"
    )
    assert kubeflow.trainjob_master_addr("j") == "j-node-0-0.j"
