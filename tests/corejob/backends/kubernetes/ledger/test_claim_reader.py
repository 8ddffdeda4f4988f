"""The reader pod (built from the chart's pod) and its output (the real script, run here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from corejob.backends.kubernetes.ledger.claim_reader import (
    READER_SCRIPT,
    parse_reader_log,
    reader_pod,
    stale_readers,
)
from corejob.errors import UsageError
from corejob.job.spec import job_pod_spec
from trainer.contract.result import run_identity, write_result_record

CLAIM = {"checkpoints": {"existingClaim": "lab-runs", "subPath": "team-a"},
         "data": {"existingClaim": "lab-data", "readOnly": True}}  # fmt: skip


def test_the_reader_mounts_only_the_runs_claim_read_only_in_either_flavour():
    pods = [
        reader_pod(job_pod_spec({**CLAIM, "apiFlavor": flavor}, "team-a"), "reader-1", 60)
        for flavor in ("pytorchjob", "trainjob")
    ]

    # The chart's pod, whichever job API carries it (a TrainJob's trainer has no pull policy).
    assert pods[0]["spec"]["containers"][0].pop("imagePullPolicy") == "IfNotPresent"
    assert pods[0] == pods[1]
    spec = pods[0]["spec"]
    assert spec["volumes"] == [{"name": "runs", "persistentVolumeClaim": {
        "claimName": "lab-runs", "readOnly": True}}]  # fmt: skip
    assert spec["containers"][0]["volumeMounts"] == [
        {"name": "runs", "mountPath": "/runs", "subPath": "team-a", "readOnly": True}
    ]
    assert spec["activeDeadlineSeconds"] == 60 and spec["restartPolicy"] == "Never"
    assert spec["automountServiceAccountToken"] is False


def test_an_empty_dir_has_nothing_to_read():
    with pytest.raises(UsageError, match=r"is emptyDir, not a claim: it does not outlive a job"):
        reader_pod(job_pod_spec({}, None), "reader-1", 60)


def run_reader(root: Path) -> list[str]:
    printed = subprocess.run([sys.executable, "-I", "-c", READER_SCRIPT, str(root)],
                             capture_output=True, text=True, check=True)  # fmt: skip
    return printed.stdout.splitlines()


def test_every_record_is_read_and_every_bad_file_named(tmp_path: Path):
    env = {"COREJOB_JOB_NAME": "good", "COREJOB_MODEL": "res_small",
           "COREJOB_DATASET": "synthetic_tiny"}  # fmt: skip
    run = {"run_dir": str(tmp_path / "good"), "model": "m", "dataset": "d"}
    write_result_record(tmp_path / "good", run_identity(env, run, "Failed", "Exit"), None)
    for name, text in (("cut", '{"job": {'), ("list", "[1, 2]"), ("binary", "\udcff")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "result.json").write_text(text, errors="surrogateescape")

    reading = parse_reader_log(run_reader(tmp_path))

    assert reading.complete
    ((path, job, result),) = [(r.path, r.job, r.result) for r in reading.records]
    assert path.endswith("good/result.json") and result is None
    assert job["metadata"]["labels"]["corejob.dev/model"] == "res_small"
    assert job["status"]["conditions"][0]["type"] == "Failed"
    problems = sorted(reading.problems)
    assert len(problems) == 3
    assert "binary/result.json: unreadable: UnicodeDecodeError" in problems[0]
    assert "cut/result.json: unreadable: JSONDecodeError" in problems[1]
    assert problems[2].endswith("list/result.json: not a run record (no job.metadata.name)")


def test_output_cut_short_is_noticed():
    lines = ['COREJOB_RECORD {"path": "/runs/a/result.json", "rec']

    reading = parse_reader_log(lines)

    assert not reading.complete and reading.records == []
    assert reading.problems == ["reader output line 1: not JSON (cut short?)"]


def test_only_readers_past_their_deadline_are_stale():
    def pod(name: str, created: str) -> dict:
        return {"metadata": {"name": name, "creationTimestamp": created},
                "spec": {"activeDeadlineSeconds": 300}}  # fmt: skip

    now = 1_800_000_000.0  # 2027-01-15T08:00:00Z
    pods = [pod("old", "2027-01-15T07:53:59Z"), pod("young", "2027-01-15T07:55:00Z")]

    assert stale_readers(pods, now) == ["old"]
