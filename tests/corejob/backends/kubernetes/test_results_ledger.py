"""The cluster's results ledger: a finished run's row survives ``cancel`` and the job's TTL.

Succeeded runs on the emulator (``cluster``: it serves pod logs, which hold the result
line); a failed run on the real API server (``kube``), where the record comes from the
job's conditions and its pod's exit code, under the restricted user's Role.
"""

from __future__ import annotations

import json

from tests.corejob.test_cli_track import RESULT, submit

LEDGER = "corejob.dev/record=result"


def finish(cluster, name: str, bps: float) -> None:
    line = "COREJOB_RESULT " + json.dumps(dict(RESULT, best_val_bps_overall=bps))
    cluster.operator.add_pod(name, "master", 0, phase="Succeeded", logs=["training", line])
    cluster.operator.set_condition(name, "Succeeded")


def rows(corejob, *args: str) -> dict[str, dict]:
    shown = corejob("results", "-o", "json", *args)
    assert shown.code == 0, shown.err
    return {row["job"]: row for row in json.loads(shown.out)}


def test_results_survive_cancel_and_the_jobs_deletion(cluster, corejob):
    never_read = submit(corejob, "synthetic_tiny", "--set", "sweep=daily")
    finish(cluster, never_read, 0.4321)
    read_then_deleted = submit(corejob, "synthetic_mixed", "--set", "sweep=daily")
    finish(cluster, read_then_deleted, 0.25)
    other_sweep = submit(corejob, "synthetic_gaborium", "--set", "sweep=weekly")
    finish(cluster, other_sweep, 0.11)

    assert rows(corejob, "--sweep", "daily")[read_then_deleted]["source"] == "live"  # recorded
    assert corejob("cancel", never_read).code == 0  # recorded before deletion
    # The job's TTL: the operator deletes it (and its pods) without corejob.
    path = f"/apis/kubeflow.org/v1/namespaces/{cluster.namespace}/pytorchjobs"
    for name in (read_then_deleted, other_sweep):
        assert cluster.operator.request("DELETE", f"{path}/{name}")[0] == 200
        pod = f"/api/v1/namespaces/{cluster.namespace}/pods/{name}-master-0"
        assert cluster.operator.request("DELETE", pod)[0] == 200
    assert cluster.jobs() == []

    kept = rows(corejob, "--sweep", "daily")
    assert set(kept) == {never_read, read_then_deleted}  # the sweep selects its records
    assert kept[never_read]["best_val_bps"] == 0.4321 and kept[never_read]["source"] == "ledger"
    assert kept[read_then_deleted]["best_val_bps"] == 0.25
    assert kept[never_read]["state"] == "Succeeded" and kept[never_read]["sweep"] == "daily"
    assert other_sweep not in rows(corejob)  # gone unread: only its claim's copy is left
    _, listing = cluster.operator.request(
        "GET", f"/api/v1/namespaces/{cluster.namespace}/configmaps?labelSelector={LEDGER}"
    )
    (record,) = [c for c in listing["items"] if c["metadata"]["labels"]["corejob.dev/result-of"]
                 == never_read]  # fmt: skip
    assert "ownerReferences" not in record["metadata"]  # neither cancel nor a TTL collects it
    table = corejob("results", "--sweep", "daily").out
    assert "0.4321" in table.splitlines()[1] or "0.4321" in table.splitlines()[2]


def test_a_failed_run_keeps_its_cause_after_cancel_on_a_real_server(kube, corejob):
    name = submit(corejob)
    kube.add_pod(name, "master", 0, phase="Failed", exit_code=2)
    why = f"PyTorchJob {name} is failed because 1 Master replica(s) failed."
    kube.set_condition(name, "Failed", reason="PyTorchJobFailed", message=why)

    cancelled = corejob("cancel", name)

    assert cancelled.code == 0, cancelled.err
    assert all(job["metadata"].get("deletionTimestamp") for job in kube.jobs())
    row = rows(corejob)[name]
    assert row["state"] == "Failed" and row["source"] == "ledger"
    assert "1 Master replica(s) failed. (exit code 2)" in row["message"]
    assert (row["model"], row["dataset"]) == ("res_small", "synthetic_tiny")
    text = corejob("results").out
    assert f"failed: {name}: PyTorchJobFailed: PyTorchJob {name} is failed" in text


def test_status_records_what_it_reads_so_a_ttl_loses_nothing(cluster, corejob):
    name = submit(corejob)
    finish(cluster, name, 0.5)
    assert "0.5000" in corejob("status").out  # the only look anyone takes before the TTL
    path = f"/apis/kubeflow.org/v1/namespaces/{cluster.namespace}/pytorchjobs/{name}"
    assert cluster.operator.request("DELETE", path)[0] == 200

    kept = rows(corejob)[name]

    assert kept["best_val_bps"] == 0.5 and kept["source"] == "ledger"
