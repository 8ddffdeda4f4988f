"""`corejob status` says why a job failed (exit code, the error line) and speaks JSON/YAML."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from corejob.backends.local.backend import LocalBackend
from corejob.job.state import JobState, summarize
from corejob.results.job_report import job_record, last_error_line
from tests.support.local_jobs import (
    no_leftover_jobs,  # noqa: F401  (autouse)
    script_job,
)
from tests.support.wait import wait_until

BAD_CONFIG = r"""
import os, sys
if os.environ["RANK"] == "0":
    print("Epoch 0: loading model config", flush=True)
    print("corejob-train: error: model config res_small.yaml: convnet.params.kernel_sz: "
          "unknown field (allowed: kernel_size, ...)", file=sys.stderr, flush=True)
    print("COREJOB_HEARTBEAT {}", flush=True)
    sys.exit(2)
"""


def test_the_trainers_own_error_line_wins():
    lines = [
        "Traceback (most recent call last):",
        '  File "x.py", line 1',
        "ValueError: shape mismatch",
        "[master-0] corejob-train: error: dataset config d.yaml: sessions: expected a list",
        "COREJOB_PROGRESS {}",
    ]
    assert last_error_line(lines) == lines[3]


def test_else_the_last_exception_line_of_a_traceback():
    lines = ["step 1", "Traceback (most recent call last):", "  File …",
             "[worker-0] torch.distributed.DistBackendError: NCCL timeout", "  "]  # fmt: skip
    assert last_error_line(lines) == "[worker-0] torch.distributed.DistBackendError: NCCL timeout"


def test_else_the_last_line_that_is_not_a_protocol_line():
    assert last_error_line(["loading", "Killed", "COREJOB_RESULT {}"]) == "Killed"
    assert last_error_line(["", "COREJOB_PROGRESS {}"]) is None


def test_record_carries_the_tables_facts_and_the_failure():
    job = {
        "metadata": {"name": "j", "labels": {"corejob.dev/model": "m"}},
        "status": {"conditions": [{"type": "Failed", "status": "True", "reason": "R"}]},
    }
    record = job_record(job, None, None, failure={"exit_codes": [2], "last_error": "e"})
    assert (record["job"], record["model"], record["state"], record["reason"]) == (
        "j", "m", "Failed", "R"
    )  # fmt: skip
    assert (record["exit_codes"], record["last_error"], record["finished"]) == ([2], "e", True)


def test_status_of_a_failed_local_job_shows_exit_code_and_error(tmp_path: Path, corejob):
    backend = LocalBackend(tmp_path)
    backend.submit(script_job("broken", BAD_CONFIG))
    wait_until(lambda: summarize(backend.get("broken")).state is JobState.FAILED, 30, "failure")
    where = ("--backend", "local", "--runs-dir", str(tmp_path))

    table = corejob("status", *where)
    assert table.code == 0
    assert "  broken: exit code 2" in table.out.splitlines()
    assert (
        "  broken: last error: [master-0] corejob-train: error: model config res_small.yaml: "
        "convnet.params.kernel_sz: unknown field (allowed: kernel_size, ...)"
    ) in table.out.splitlines()

    wide = corejob("status", *where, "-o", "wide").out.splitlines()
    header, row = wide[0].split(), wide[1].split()
    assert header[-1] == "EXIT" and row[-1] == "2" and row[0] == "broken"

    [record] = json.loads(corejob("status", *where, "-o", "json").out)
    assert record["state"] == "Failed" and record["exit_codes"] == [2]
    assert "kernel_sz" in record["last_error"]
    [as_yaml] = yaml.safe_load(corejob("status", *where, "-o", "yaml").out)
    assert {**as_yaml, "age_s": None} == {**record, "age_s": None}  # age moves on


def test_no_jobs_is_an_empty_list_for_scripts(tmp_path: Path, corejob):
    where = ("--backend", "local", "--runs-dir", str(tmp_path))
    assert json.loads(corejob("status", *where, "-o", "json").out) == []
    assert corejob("status", *where).out == "no jobs\n"
