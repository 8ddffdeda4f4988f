"""Progress of a job on the local backend, as a user sees it from the CLI.

A small program standing in for the trainer prints progress records, so ``submit
--wait``'s loop (``wait_for``), ``status`` and ``logs --follow`` are checked in seconds;
the slow test runs the real trainer through ``corejob submit --wait`` and times the
first progress line a user sees.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from corejob.backends.local.backend import LocalBackend
from corejob.job.state import LABEL_CONFIG_HASH, JobState, summarize
from corejob.results.status_table import PROGRESS_POLL_ENV
from corejob.submission import wait_for
from tests.support.local_jobs import (
    no_leftover_jobs,  # noqa: F401  (autouse)
    script_job,
)
from tests.support.wait import wait_until
from trainer.contract.progress import parse_progress_line

# Stand-in trainer: a record after "step 1", then, once the test says go, the final one.
PROGRAM = r"""
import datetime, json, os, sys, time
run_dir = sys.argv[1]
os.makedirs(run_dir, exist_ok=True)
def record(step, phase):
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
    return {"time": now.replace("+00:00", "Z"), "phase": phase, "epoch": 1 if step < 6 else 2,
            "max_epochs": 2, "step": step, "total_steps": 12, "train_loss": 0.5,
            "samples_per_s": 64.0, "eta_s": 0.0 if phase == "end" else 65.0,
            "val_bps_overall": 0.25 if phase == "end" else None, "val_bps": {},
            "val_epoch": None, "attempt": 1, "world_size": 1}
print("COREJOB_PROGRESS " + json.dumps(record(1, "train")), flush=True)
while not os.path.exists(os.path.join(run_dir, "go")):
    time.sleep(0.05)
print("COREJOB_PROGRESS " + json.dumps(record(12, "end")), flush=True)
"""
FIRST = "epoch 1/2 step 1/12 loss 0.500 ETA 1m05s"
FINAL = "epoch 2/2 step 12/12 loss 0.500 bps 0.25 done"


def corejob(*args: str, runs_dir: Path) -> subprocess.CompletedProcess[str]:
    """One CLI invocation in its own process, as a user in another shell would run it."""
    command = [sys.executable, "-m", "corejob", *args, "--backend", "local"]
    command += ["--runs-dir", str(runs_dir)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_wait_status_and_follow_show_the_progress_records(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(PROGRESS_POLL_ENV, "0.05")
    backend, job = LocalBackend(tmp_path), script_job("prog", PROGRAM, workers=0)
    job["metadata"]["labels"][LABEL_CONFIG_HASH] = "prog"  # what submit --wait tracks by
    backend.submit(job)
    log = backend.store.log_path("prog", "master-0")
    wait_until(lambda: log.exists() and "COREJOB_PROGRESS" in log.read_text(), 60, "record 1")
    wait_until(
        lambda: summarize(backend.get("prog")).state == JobState.RUNNING,
        30,
        "the supervisor to mark the job Running (status reads only running jobs' logs)",
    )

    status = corejob("status", runs_dir=tmp_path)
    assert status.returncode == 0, status.stderr
    header, row = status.stdout.splitlines()[:2]
    assert header.split()[-5:] == ["DURATION", "ATTEMPTS", "BEST", "VAL_BPS", "PROGRESS"]
    duration, attempts, best, progress = row.split(maxsplit=9)[6:]
    assert duration.endswith("s") and (attempts, best, progress) == ("1", "-", FIRST)

    follow = subprocess.Popen(
        [sys.executable, "-m", "corejob", "logs", "prog", "--follow", "--backend", "local",
         "--runs-dir", str(tmp_path)], stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    codes: list[int] = []
    waiting = threading.Thread(target=lambda: codes.append(wait_for(backend, job, None)))
    waiting.start()
    shown = ""

    def on_screen(text: str) -> bool:
        nonlocal shown
        shown += capsys.readouterr().out
        if text not in shown and not waiting.is_alive():
            raise AssertionError(f"wait_for ended ({codes}) without {text!r}:\n{shown}")
        return text in shown

    wait_until(lambda: on_screen(f"job prog: {FIRST}"), 30, "submit --wait's first line")
    (tmp_path / "prog" / "volumes" / "runs" / "prog" / "go").touch()
    waiting.join(timeout=60)
    assert codes == [0]
    on_screen("")
    assert shown.splitlines() == [
        f"job prog: {FIRST}",
        f"job prog: {FINAL}",
        "job prog: Succeeded PyTorchJobSucceeded PyTorchJob prog is successfully completed.",
    ]
    followed, _ = follow.communicate(timeout=60)  # ends with the job
    records = [parse_progress_line(line) for line in followed.splitlines()]
    assert [(r["step"], r["phase"]) for r in records if r] == [(1, "train"), (12, "end")]


@pytest.mark.slow
def test_submit_wait_shows_live_progress_of_the_real_trainer(tmp_path):
    """The issue's acceptance test: after ``created job``, progress within seconds of the
    first step, not silence until ``Succeeded``."""
    command = [sys.executable, "-m", "corejob", "submit", "-m", "res_small", "-d",
               "synthetic_tiny", "--workers", "0", "--set", "trainer.maxEpochs=3",
               "--set", "trainer.numWorkers=0",
               "--set", "trainer.extraArgs={--progress_every_seconds,1}", "--wait",
               "--backend", "local", "--runs-dir", str(tmp_path)]  # fmt: skip
    seen: list[tuple[float, str]] = []
    env = {**os.environ, PROGRESS_POLL_ENV: "0.5"}  # so a short run is seen mid-training
    submit = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    reader = threading.Thread(
        target=lambda: seen.extend((time.monotonic(), line.rstrip()) for line in submit.stdout)
    )
    reader.start()
    try:
        assert submit.wait(timeout=300) == 0, "\n".join(line for _, line in seen)
    finally:
        if submit.poll() is None:
            submit.kill()
        reader.join(timeout=10)
    lines = [line for _, line in seen]
    created_at, created = next((t, ln) for t, ln in seen if ln.startswith("created job"))
    name = created.split()[2]
    progress = [(t, ln) for t, ln in seen if ln.startswith(f"job {name}: epoch")]
    assert progress, "\n".join(lines)
    live = [ln for _, ln in progress if not ln.endswith(" done")]
    # start-up (imports, data generation, model) on a busy machine, one step, one poll
    assert progress[0][0] - created_at < 120
    assert live, "no progress while training ran:\n" + "\n".join(lines)
    assert any(" ETA " in line for line in live), "\n".join(lines)  # a rate, a time left
    assert progress[-1][1].startswith(f"job {name}: epoch 3/3 ") and progress[-1][1].endswith(
        " done"
    )
    assert lines[-1].startswith(f"job {name}: Succeeded")

    status = subprocess.run(
        [sys.executable, "-m", "corejob", "status", name, "--backend", "local", "--runs-dir",
         str(tmp_path)], capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    duration, attempts, best, rest = status.stdout.splitlines()[1].split(maxsplit=9)[6:]
    assert attempts == "1" and float(best) > 0 and rest == "-" and duration != "-"
