"""status (with explanations) and cancel on the real API server (``kube``); logs and results
on the emulator (``cluster``), which has what a real server only has with a kubelet."""

from __future__ import annotations

import csv
import json
import re

from corejob.errors import ExitCode
from tests.corejob.conftest import Background
from tests.support.wait import wait_until

RESULT = {"model": "res_small", "dataset": "synthetic_tiny", "best_val_bps_overall": 0.4321,
          "final_val_bps_overall": 0.41, "val_bps": {"s1": 0.43}, "epochs": 3,
          "global_step": 30, "world_size": 2, "wall_time_s": 12.5}  # fmt: skip


def submit(corejob, dataset: str = "synthetic_tiny", *extra: str) -> str:
    result = corejob("submit", "-m", "res_small", "-d", dataset, *extra)
    assert result.code == 0, result.err
    return result.out.split()[2]


def test_status_explains_a_pod_waiting_for_gpus(kube, corejob):
    name = submit(corejob, "synthetic_tiny", "--gpus", "2")
    kube.set_condition(name, "Created")
    pod = kube.add_pod(name, "master", 0, phase="Pending")
    kube.add_event(
        pod, "FailedScheduling", "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."
    )

    result = corejob("status")

    assert result.code == 0, result.err
    header, row = result.out.splitlines()[:2]
    assert header.split()[:4] == ["JOB", "MODEL", "DATASET", "STATE"]
    assert row.split()[:4] == [name, "res_small", "synthetic_tiny", "Created"]
    assert f"{name}: master-0 cannot be scheduled: no node has enough free nvidia.com/gpu" in (
        result.out
    )
    assert "request fewer (--gpus)" in result.out

    timed_out = corejob("status", name, "--pending-timeout", "0s")
    assert timed_out.code == ExitCode.PENDING_TIMEOUT
    assert f"pending longer than 0s: {name}" in timed_out.err


def test_status_explains_image_pull_and_init_waiting(kube, corejob):
    name = submit(corejob, "synthetic_tiny", "--workers", "1", "--image", "registry.example/t:9")
    kube.add_pod(name, "master", 0, phase="Pending", waiting_reason="ImagePullBackOff")
    worker = kube.add_pod(name, "worker", 0, phase="Pending")
    init = {"name": "init-pytorch", "state": {"running": {}}, "ready": False, "restartCount": 0,
            "image": "busybox", "imageID": ""}  # fmt: skip
    kube.patch_status(f"/api/v1/namespaces/{kube.name}/pods/{worker}",
                      {"initContainerStatuses": [init]})  # fmt: skip
    out = corejob("status", name).out
    assert "master-0 cannot pull image trainer" in out
    assert "worker-0 waits in its init container 'init-pytorch' for the master" in out


def test_logs_master_by_default_all_replicas_and_one_replica(cluster, corejob):
    name = submit(corejob, "synthetic_tiny", "--workers", "1")
    master = cluster.operator.add_pod(name, "master", 0, logs=["master starts"])
    worker = cluster.operator.add_pod(name, "worker", 0, logs=["worker starts"])
    cluster.operator.log(master, "epoch 1 val_bps 0.2")
    cluster.operator.log(worker, "worker epoch 1")

    default = corejob("logs", name)
    both = corejob("logs", name, "--all")
    one = corejob("logs", name, "--replica", "worker-0")

    assert default.out.splitlines() == ["master starts", "epoch 1 val_bps 0.2"]
    assert both.out.splitlines() == [
        "[rank 0 master-0] master starts",
        "[rank 1 worker-0] worker starts",
        "[rank 0 master-0] epoch 1 val_bps 0.2",
        "[rank 1 worker-0] worker epoch 1",
    ]
    assert one.out.splitlines() == ["worker starts", "worker epoch 1"]
    cluster.operator.log(master, "an hour ago", age_s=3600)
    recent = corejob("logs", name, "--since", "10m")
    assert "an hour ago" not in recent.out and "epoch 1 val_bps 0.2" in recent.out
    assert corejob("logs", "no-such-job").code == ExitCode.NOT_FOUND


def test_logs_follow_streams_until_the_pod_ends(cluster, corejob, capsys):
    name = submit(corejob)
    master = cluster.operator.add_pod(name, "master", 0, logs=["first"])
    follow = Background("logs", name, "--follow")
    cluster.operator.log(master, "second")
    cluster.operator.set_pod_phase(master, "Succeeded")
    assert follow.join() == 0
    assert capsys.readouterr().out.splitlines() == ["first", "second"]


def test_results_table_csv_json_and_heatmap(cluster, corejob, tmp_path):
    tiny, mixed = submit(corejob, "synthetic_tiny"), submit(corejob, "synthetic_mixed")
    unfinished = submit(corejob, "synthetic_gaborium")
    for name, bps in ((tiny, 0.4321), (mixed, 0.25)):
        line = "COREJOB_RESULT " + json.dumps(dict(RESULT, best_val_bps_overall=bps))
        cluster.operator.add_pod(name, "master", 0, phase="Succeeded",
                                 logs=["training...", line, "bye"])  # fmt: skip
        cluster.operator.set_condition(name, "Succeeded")

    result = corejob("results", "--csv", "r.csv", "--json", "r.json", "--plot", "r.png")

    assert result.code == 0, result.err
    header, *lines = result.out.splitlines()
    assert re.split(" {2,}", header)[:4] == ["model", "dataset", "best val bits/spike", "final"]
    rows = {line.split()[1]: line.split() for line in lines[:3]}
    assert rows["synthetic_tiny"][:5] == ["res_small", "synthetic_tiny", "0.4321", "0.4100", "3"]
    assert rows["synthetic_mixed"][2] == "0.2500"
    assert rows["synthetic_gaborium"][2] == "-" and rows["synthetic_gaborium"][-1] == unfinished
    assert "under-trained" in rows["synthetic_tiny"]  # 30 steps < --min-steps 100
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert {(r["dataset"], r["best_val_bps"]) for r in rows} == {
        ("synthetic_tiny", "0.4321"),
        ("synthetic_mixed", "0.25"),
        ("synthetic_gaborium", ""),
    }
    records = {r["dataset"]: r for r in json.loads((tmp_path / "r.json").read_text())}
    assert records["synthetic_tiny"]["result"]["epochs"] == 3
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    status = corejob("status", tiny).out
    assert "0.4321" in status.splitlines()[1]


def test_cancel_a_job_and_a_sweep(kube, corejob):
    name = submit(corejob)
    result = corejob("cancel", name)
    assert result.code == 0 and f"deleted job {name}" in result.out
    wait_until(lambda: kube.job(name) is None, 30, f"{name} to be deleted")
    assert corejob("cancel", name).code == ExitCode.NOT_FOUND

    grid = ["--models", "res_small", "--datasets", "synthetic_tiny,synthetic_mixed"]
    sweep = Background("sweep", *grid, "--name", "gone", "--poll", "0.2")
    wait_until(
        lambda: len(kube.jobs("corejob.dev/sweep=gone")) == 2,
        15,
        "sweep 'gone' to create both of its jobs",
    )
    cancelled = corejob("cancel", "--sweep", "gone")
    assert cancelled.out.count("deleted job") == 2
    wait_until(lambda: kube.jobs("corejob.dev/sweep=gone") == [], 30, "the sweep's jobs to go")
    assert sweep.join() == ExitCode.JOB_FAILED  # the sweep ends: its cells were cancelled


def test_submit_follow_streams_the_master_log_then_reports_the_outcome(cluster, capsys):
    follow = Background("submit", "-m", "res_small", "-d", "synthetic_tiny", "--follow")
    (job,) = wait_until(cluster.jobs, 15, "submit --follow to create its job")
    name = job["metadata"]["name"]
    master = cluster.operator.add_pod(name, "master", 0, logs=["epoch 1"])
    cluster.operator.log(master, "COREJOB_RESULT {}")
    cluster.operator.set_condition(name, "Succeeded")
    cluster.operator.set_pod_phase(master, "Succeeded")
    assert follow.join() == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:3] == ["epoch 1", "COREJOB_RESULT {}"]
    assert lines[-1].startswith(f"job {name}: Succeeded")
