"""The pure cores: sweep planning, retryability, identity, --set parsing, explanations."""

from __future__ import annotations

import pytest

from corejob.errors import UsageError
from corejob.identity import MAX_NAME_LENGTH, job_name, sanitize
from corejob.jobspec import image_values, parse_set
from corejob.jobstate import JobState
from corejob.kube.explain import explain_pending
from corejob.sweep import ActionKind, Cell, CellView, failure_retryable, plan, sweep_id

A, B, C = Cell("m", "a"), Cell("m", "b"), Cell("m", "c")


def view(cell: Cell, state: JobState | None, **kwargs) -> CellView:
    return CellView(cell, f"job-{cell.dataset}", state, **kwargs)


def test_plan_fills_only_free_slots_in_grid_order():
    views = [view(A, JobState.RUNNING, attempts=1), view(B, None), view(C, None)]
    result = plan(views, max_parallel=2, retries=1)
    assert [(a.kind, a.cell) for a in result.actions] == [(ActionKind.SUBMIT, B)]
    assert not result.done


def test_plan_retries_retryable_failures_within_budget_only():
    retryable = view(A, JobState.FAILED, retryable=True, attempts=1)
    exhausted = view(B, JobState.FAILED, retryable=True, attempts=2)
    permanent = view(C, JobState.FAILED, retryable=False, attempts=1)
    result = plan([retryable, exhausted, permanent], max_parallel=5, retries=1)
    assert [(a.kind, a.cell, a.attempt) for a in result.actions] == [(ActionKind.RETRY, A, 2)]


def test_plan_on_a_rerun_resubmits_failed_and_missing_but_not_succeeded():
    views = [
        view(A, JobState.SUCCEEDED),
        view(B, JobState.FAILED, failed_at_start=True),
        view(C, None),
    ]
    assert {a.cell for a in plan(views, 5, retries=0).actions} == {B, C}


def test_plan_is_done_when_nothing_runs_or_waits():
    views = [view(A, JobState.SUCCEEDED, attempts=1), view(B, JobState.FAILED, attempts=1)]
    assert plan(views, 2, retries=0).done
    assert not plan([view(A, JobState.CREATED, attempts=1)], 2, 0).done
    cancelled = view(C, None, attempts=1)  # we created it, someone deleted it: leave it
    assert plan([cancelled], 2, 3).done and not plan([cancelled], 2, 3).actions


@pytest.mark.parametrize(
    ("reason", "message", "codes", "expected"),
    [
        ("PyTorchJobFailed", "1 Master replica(s) failed", [143], True),
        ("PyTorchJobFailed", "1 Master replica(s) failed", [129, 137], True),
        ("PyTorchJobFailed", "1 Master replica(s) failed", [2], False),
        ("PyTorchJobFailed", "", [143, 1], False),
        ("PyTorchJobFailed", "container pytorch exited with exit code 143", [], True),
        ("PyTorchJobFailed", "pod exited with exitCode: 1", [], False),
        ("Evicted", "The node was low on resource: memory.", [], True),
        ("PyTorchJobFailed", "something odd", [], False),
    ],
)
def test_failure_retryability_follows_the_contract(reason, message, codes, expected):
    assert failure_retryable(reason, message, codes) is expected


def test_job_names_are_dns_1035_and_at_most_50_characters():
    assert sanitize("Res_Small--GRU") == "res-small-gru"
    assert sanitize("3d_model") == "j-3d-model"
    name = job_name("res_small_concat_gru" * 3, "synthetic_realistic", "0123456789")
    assert len(name) <= MAX_NAME_LENGTH and name.endswith("-0123456789")
    assert name[0].isalpha() and "--" not in name and "_" not in name


def test_sweep_id_is_stable_for_the_same_grid():
    assert sweep_id(["a"], ["x", "y"], ["k=1"]) == sweep_id(["a"], ["x", "y"], ["k=1"])
    assert sweep_id(["a"], ["x", "y"], []) != sweep_id(["a"], ["x"], [])


def test_parse_set_builds_typed_nested_values():
    values = parse_set(["trainer.maxEpochs=5", "trainer.precision=bf16-mixed", "wandb.mode=online",
                        "trainer.extraArgs=[--seed, '3']", "nodeSelector.gpu=a100"])  # fmt: skip
    assert values["trainer"] == {"maxEpochs": 5, "precision": "bf16-mixed",
                                 "extraArgs": ["--seed", "3"]}  # fmt: skip
    assert values["wandb"] == {"mode": "online"} and values["nodeSelector"] == {"gpu": "a100"}
    with pytest.raises(UsageError, match="expected key=value"):
        parse_set(["trainer..x=1"])
    with pytest.raises(UsageError, match="not YAML"):
        parse_set(["trainer.extraArgs=[unclosed"])


def test_image_references_split_into_chart_values():
    assert image_values("ghcr.io/lab/trainer:1.2") == {"repository": "ghcr.io/lab/trainer",
                                                       "tag": "1.2"}  # fmt: skip
    assert image_values("localhost:5000/t") == {"repository": "localhost:5000/t", "tag": ""}
    assert image_values("r/t@sha256:ab")["digest"] == "sha256:ab"


def pending_pod(message: str) -> dict:
    labels = {"training.kubeflow.org/replica-type": "worker",
              "training.kubeflow.org/replica-index": "1"}  # fmt: skip
    return {"metadata": {"name": "j-worker-1", "labels": labels},
            "status": {"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "False", "message": message}]}}  # fmt: skip


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("0/4 nodes are available: 4 Insufficient nvidia.com/gpu.", "enough free nvidia.com/gpu"),
        ("0/2 nodes are available: 2 node(s) had untolerated taint {gpu: true}.", "tainted"),
        ("pod has unbound immediate PersistentVolumeClaims.", "PersistentVolumeClaim is not bound"),
        ("0/3 nodes are available: 3 Insufficient memory.", "enough free memory"),
    ],
)
def test_explanations_name_the_pod_and_the_cause(message, expected):
    (reason,) = explain_pending([pending_pod(message)], [])
    assert reason.startswith("worker-1 cannot") or reason.startswith("worker-1 is waiting")
    assert expected in reason


def test_no_pods_points_at_the_operator():
    assert "training operator running" in explain_pending([], [])[0]


def test_progress_counts_use_words_users_know_in_lifecycle_order():
    from corejob.sweep import outcome_counts

    gone = view(Cell("m", "d"), None, attempts=1)
    views = [view(A, None), view(B, JobState.UNKNOWN, attempts=1),
             view(C, JobState.SUCCEEDED, attempts=1), gone]  # fmt: skip
    assert outcome_counts(views) == {"queued": 1, "submitted": 1, "succeeded": 1, "cancelled": 1}
