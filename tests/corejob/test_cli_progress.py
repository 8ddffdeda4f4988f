"""What a user sees of a running job, on the emulated cluster: ``submit --wait`` prints
each newer progress record, ``status`` has PROGRESS/DURATION/ATTEMPTS columns (one log
read per running job, none for the others) and a sweep shows progress per cell."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest

from corejob.cli import main
from corejob.results.status_table import PROGRESS_POLL_ENV, progress_text
from tests.corejob.conftest import Background
from tests.support.kube_cluster import JOBS
from tests.support.wait import wait_until
from trainer.contract.progress import progress_line, utc_timestamp


def record(step: int, phase: str = "train", **extra: Any) -> dict[str, Any]:
    """A progress record written now (the trainer's clock), 10 steps per epoch."""
    return {"time": utc_timestamp(), "phase": phase, "epoch": min(step // 10 + 1, 3),
            "max_epochs": 3, "step": step, "total_steps": 30, "train_loss": 1.0 / step,
            "samples_per_s": 100.0, "eta_s": 2.0 * (30 - step), "val_bps_overall": None,
            "val_bps": {}, "val_epoch": None, "attempt": 1, "world_size": 1, **extra}  # fmt: skip


def submit(corejob, dataset: str) -> str:
    result = corejob("submit", "-m", "res_small", "-d", dataset)
    assert result.code == 0, result.err
    return result.out.split()[2]


class Screen:
    """Everything the CLI printed so far (capsys hands each piece out only once)."""

    def __init__(self, capsys: pytest.CaptureFixture[str], stream: str = "out") -> None:
        self.capsys, self.stream, self.text = capsys, stream, ""

    def shows(self, text: str) -> bool:
        self.text += getattr(self.capsys.readouterr(), self.stream)
        return text in self.text


@pytest.fixture
def fast_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read progress every 50 ms instead of every 5 s, so the test takes no waiting."""
    monkeypatch.setenv(PROGRESS_POLL_ENV, "0.05")


def test_submit_wait_prints_each_newer_progress_record_once(cluster, capsys, fast_progress):
    waiting = Background("submit", "-m", "res_small", "-d", "synthetic_tiny", "--wait")
    (job,) = wait_until(cluster.jobs, 15, "submit --wait to create its job")
    name, screen = job["metadata"]["name"], Screen(capsys)
    first, second = record(1), record(12)
    master = cluster.operator.add_pod(name, "master", 0, logs=["start", progress_line(first)])
    cluster.operator.set_condition(name, "Running")
    wait_until(lambda: screen.shows(progress_text(first)), 15, "the first record on screen")
    cluster.operator.log(master, "COREJOB_EPOCH epoch=1/3 step=10", progress_line(second))
    wait_until(lambda: screen.shows(progress_text(second)), 15, "the second record")
    final = record(30, "end", eta_s=0.0, val_bps_overall=0.42)
    cluster.operator.log(master, progress_line(final), "COREJOB_RESULT {}")
    cluster.operator.set_condition(name, "Succeeded")
    assert waiting.join() == 0
    screen.shows("")
    lines = screen.text.splitlines()
    assert lines[0].startswith(f"created job {name}")
    assert lines[1:] == [
        f"job {name}: epoch 1/3 step 1/30 loss 1.000 ETA 58s",
        f"job {name}: epoch 2/3 step 12/30 loss 0.083 ETA 36s",
        f"job {name}: epoch 3/3 step 30/30 loss 0.033 bps 0.42 done",  # read once it ended
        f"job {name}: Succeeded PyTorchJobSucceeded PyTorchJob {name} is succeeded.",
    ]
    # --wait recorded the run: it outlives its job (deleted here as its TTL would).
    path = f"{JOBS.format(ns=cluster.namespace)}/{name}"
    assert cluster.operator.request("DELETE", path)[0] == 200
    assert main(["results", "-o", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["job"], row["state"], row["source"]) == (name, "Succeeded", "ledger")


def test_status_shows_progress_duration_and_attempts_reading_only_running_logs(cluster, corejob):
    datasets = ("synthetic_tiny", "synthetic_mixed", "synthetic_gaborium", "synthetic_realistic")
    running, stale, done, pending = (submit(corejob, dataset) for dataset in datasets)
    started = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    for name in (running, stale, done):
        cluster.operator.set_condition(name, "Running")
        path = f"{JOBS.format(ns=cluster.namespace)}/{name}/status"
        start = started.strftime("%Y-%m-%dT%H:%M:%SZ")
        code, body = cluster.operator.request("PATCH", path, {"status": {"startTime": start}})
        assert code == 200, body
    now = record(12, val_bps_overall=0.31, attempt=2)
    cluster.operator.add_pod(running, "master", 0, logs=["x", progress_line(now)])
    quiet = cluster.operator.add_pod(stale, "master", 0)
    cluster.operator.log(quiet, progress_line(record(3)), age_s=3600)  # reported an hour ago
    result = {"best_val_bps_overall": 0.4321, "attempts": 3}
    cluster.operator.add_pod(done, "master", 0, phase="Succeeded",
                             logs=[progress_line(record(30, "end")),
                                   "COREJOB_RESULT " + json.dumps(result)])  # fmt: skip
    cluster.operator.set_condition(done, "Succeeded")
    before = len(cluster.controller_requests())

    status = corejob("status")

    assert status.code == 0, status.err
    header, *rows = status.out.splitlines()[:5]
    assert header.split()[-5:] == ["DURATION", "ATTEMPTS", "BEST", "VAL_BPS", "PROGRESS"]
    # JOB MODEL DATASET STATE REPLICAS AGE | DURATION ATTEMPTS BEST PROGRESS (several words)
    cells = {row.split()[0]: row.split(maxsplit=9)[6:] for row in rows}
    duration, attempts, best, progress = cells[running]
    assert duration in ("5m00s", "5m01s", "5m02s") and (attempts, best) == ("2", "-")
    assert progress == "epoch 2/3 step 12/30 loss 0.083 bps 0.31 ETA 36s"
    assert cells[stale][1:] == ["-", "-", "-"]  # no record in the log's recent tail
    assert cells[done][1:] == ["3", "0.4321", "-"]  # attempts from the result
    assert cells[pending] == ["-", "-", "-", "-"]
    logs_read = [r.name for r in cluster.controller_requests()[before:] if r.subresource == "log"]
    # one tail per running job, the result's tail of the finished one; pending: none
    assert sorted(logs_read) == sorted(f"{n}-master-0" for n in (running, stale, done))


def test_a_sweep_prints_progress_per_running_cell(cluster, capsys):
    grid = ["--models", "res_small", "--datasets", "synthetic_tiny,synthetic_mixed"]
    sweep = Background("sweep", *grid, "--name", "live", "--poll", "0.05")

    def both_submitted() -> list[dict[str, Any]] | None:
        found = cluster.jobs("corejob.dev/sweep=live")
        return found if len(found) == 2 else None

    jobs = wait_until(both_submitted, 15, "both cells to be submitted")
    talking, silent = sorted(job["metadata"]["name"] for job in jobs)
    for name in (talking, silent):
        cluster.operator.set_condition(name, "Running")
    master = cluster.operator.add_pod(talking, "master", 0, logs=[progress_line(record(4))])
    screen = Screen(capsys, "err")
    wait_until(lambda: screen.shows(f"  {talking}: {progress_text(record(4))}"), 15, "cell 1")
    cluster.operator.log(master, progress_line(record(14)))
    wait_until(lambda: screen.shows(f"  {talking}: {progress_text(record(14))}"), 15, "news")
    for name in (talking, silent):
        cluster.operator.set_condition(name, "Succeeded")
    assert sweep.join() == 0
    screen.shows("")
    blocks = [line for line in screen.text.splitlines() if line.startswith(f"  {talking}: ")]
    assert len(blocks) == 2  # each record once, however often the sweep loop turned
    assert f"  {silent}:" not in screen.text  # no record, no line
    header = screen.text.splitlines()[screen.text.splitlines().index(blocks[0]) - 1]
    assert header == "[live] 2 cells: 2 running"
