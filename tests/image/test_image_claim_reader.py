"""The results reader pod's container, run in the built trainer image as its pod runs it:
the pod's own command, its user, a read-only root with nothing writable, the claim
mounted read-only, no network. What it prints is what ``corejob results --from-claim``
reads back."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from corejob.backends.kubernetes.ledger.claim_reader import parse_reader_log, reader_pod
from corejob.job.spec import job_pod_spec
from tests.support.podman import TrainerImage
from trainer.contract.result import run_identity, write_result_record

pytestmark = [pytest.mark.slow, pytest.mark.container]


def test_the_reader_reads_the_trainers_records_in_the_image(
    trainer_image: TrainerImage, tmp_path: Path
) -> None:
    claim = tmp_path / "claim"
    env = {"COREJOB_JOB_NAME": "res-small-tiny-1", "COREJOB_MODEL": "res_small",
           "COREJOB_DATASET": "synthetic_tiny"}  # fmt: skip
    run = {"run_dir": str(claim / "team-a" / "res-small-tiny-1"), "model": "m", "dataset": "d"}
    identity = run_identity(env, run, "Succeeded", "Trained", "", 30.0)
    write_result_record(Path(run["run_dir"]), identity, {"best_val_bps_overall": 0.31})
    (claim / "team-a" / "torn").mkdir()
    (claim / "team-a" / "torn" / "result.json").write_text('{"job": ')
    for path in [claim, *claim.rglob("*")]:  # the trainer's files: uid 1000, like the reader
        os.chown(path, 1000, 1000)
    values = {"image": {"repository": trainer_image.tag.rsplit(":", 1)[0],
                        "tag": trainer_image.tag.rsplit(":", 1)[1]},
              "checkpoints": {"existingClaim": "runs", "subPath": "team-a"}}  # fmt: skip
    pod = reader_pod(job_pod_spec(values, None), "corejob-results-test", 60)
    (container,) = pod["spec"]["containers"]
    user = container["securityContext"]["runAsUser"]
    mount = container["volumeMounts"][0]
    assert mount["readOnly"] and container["securityContext"]["readOnlyRootFilesystem"]

    printed = trainer_image.podman.run(
        "run", "--rm", "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--network", "none", "--user", f"{user}:{user}",
        "-v", f"{claim / mount['subPath']}:{mount['mountPath']}:ro",
        "--entrypoint", container["command"][0], container["image"], *container["command"][1:],
    )  # fmt: skip

    reading = parse_reader_log(printed.stdout.splitlines())
    assert reading.complete
    ((path, job, result),) = [(r.path, r.job, r.result) for r in reading.records]
    assert path == "/runs/res-small-tiny-1/result.json"
    assert job["metadata"]["name"] == "res-small-tiny-1" and result == {
        "best_val_bps_overall": 0.31
    }
    assert reading.problems == [
        "/runs/torn/result.json: unreadable: JSONDecodeError: Expecting value: line 1 column 9 "
        "(char 8)"
    ]
