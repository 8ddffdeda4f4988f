"""``corejob results --from-claim``: runs a TTL deleted before corejob saw them come back
from their ``result.json`` on the checkpoints claim, read by a short-lived pod.

On the emulator the test plays the kubelet: it waits for the reader pod, checks that it
runs like the jobs' pods (same image, user, service account, placement, claim and subPath,
read-only), runs the pod's own command on a directory of records the trainer's own writer
made, appends that output as the pod's log and ends the pod.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from corejob.backends.kubernetes.api import KubeApi
from corejob.backends.kubernetes.ledger.claim_reader import READER_SELECTOR, RUNS_MOUNT
from corejob.errors import ExitCode
from tests.corejob.backends.kubernetes.test_results_ledger import LEDGER, finish, rows
from tests.corejob.conftest import Background
from tests.corejob.test_cli_track import RESULT, submit
from tests.support.wait import wait_until
from trainer.contract.result import run_identity, write_result_record

SITE = {
    "image": {"repository": "registry.example/lab/corejob-trainer", "tag": "0.9.1",
              "pullSecrets": ["lab-registry"]},
    "serviceAccountName": "corejob-trainer",
    "nodeSelector": {"pool": "cpu"},
    "tolerations": [{"key": "lab", "operator": "Exists", "effect": "NoSchedule"}],
    "checkpoints": {"existingClaim": "lab-runs", "subPath": "team-a"},
    "wandb": {"mode": "disabled"},
}  # fmt: skip


def site_file(tmp_path: Path) -> str:
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(SITE))
    return str(path)


def trainer_record(runs: Path, job: str, result: dict | None, sweep: str = "") -> None:
    """``<run dir>/result.json`` as the trainer writes it on the claim."""
    env = {"COREJOB_JOB_NAME": job, "COREJOB_MODEL": "res_small",
           "COREJOB_DATASET": "synthetic_tiny", "COREJOB_SWEEP": sweep}  # fmt: skip
    run = {"run_dir": str(runs / job), "model": "res_small", "dataset": "synthetic_tiny"}
    state = "Succeeded" if result is not None else "Failed"
    identity = run_identity(env, run, state, "Trained", "", 12.5)
    write_result_record(runs / job, identity, result)


def reader_pods(cluster) -> list[dict]:
    path = f"/api/v1/namespaces/{cluster.namespace}/pods?labelSelector={READER_SELECTOR}"
    return cluster.operator.request("GET", path)[1]["items"]


def the_reader_pod(cluster) -> dict:
    (pod,) = wait_until(lambda: reader_pods(cluster), 30, "the results reader pod")
    return pod


def play_kubelet(cluster, pod: dict, runs: Path) -> None:
    """Run the pod's command on ``runs`` (its claim), its output as the pod's log."""
    command = list(pod["spec"]["containers"][0]["command"])
    assert command[:2] == ["python3", "-I"] and command[-1] == RUNS_MOUNT
    printed = subprocess.run([sys.executable, *command[1:-1], str(runs)], capture_output=True,
                             text=True, check=True)  # fmt: skip
    cluster.operator.log(pod["metadata"]["name"], *printed.stdout.splitlines())
    cluster.operator.set_pod_phase(pod["metadata"]["name"], "Succeeded")


def delete_job(cluster, name: str) -> None:
    """What the job's TTL does: the job and its pods go, corejob is not asked."""
    ns = cluster.namespace
    job = f"/apis/kubeflow.org/v1/namespaces/{ns}/pytorchjobs/{name}"
    assert cluster.operator.request("DELETE", job)[0] == 200
    cluster.operator.request("DELETE", f"/api/v1/namespaces/{ns}/pods/{name}-master-0")


def set_pod_status(cluster, pod: str, status: dict) -> None:
    """What the kubelet reports of the reader pod."""
    path = f"/api/v1/namespaces/{cluster.namespace}/pods/{pod}"
    assert cluster.operator.request("PATCH", path, {"status": status})[0] == 200


def ledger_config_maps(cluster) -> dict[str, dict]:
    path = f"/api/v1/namespaces/{cluster.namespace}/configmaps?labelSelector={LEDGER}"
    items = cluster.operator.request("GET", path)[1]["items"]
    return {c["metadata"]["labels"]["corejob.dev/result-of"]: c for c in items}


def test_a_run_deleted_unseen_comes_back_from_the_claim(cluster, corejob, tmp_path, capsys):
    site, runs = site_file(tmp_path), tmp_path / "claim"
    seen = submit(corejob, "synthetic_mixed", "-f", site)
    finish(cluster, seen, 0.25)
    assert rows(corejob)[seen]["source"] == "live"  # recorded by this look
    unseen = submit(corejob, "synthetic_tiny", "-f", site, "--set", "sweep=daily")
    unseen_result = dict(RESULT, best_val_bps_overall=0.3917)
    finish(cluster, unseen, 0.3917)  # nobody looks before its TTL
    for name in (unseen, seen):
        delete_job(cluster, name)
    trainer_record(runs, unseen, unseen_result, sweep="daily")
    trainer_record(runs, seen, dict(RESULT, best_val_bps_overall=0.25))
    (runs / "broken-run").mkdir()
    (runs / "broken-run" / "result.json").write_text('{"job": {"metadata": {"na')
    assert unseen not in rows(corejob) and unseen not in ledger_config_maps(cluster)

    reading = Background("results", "-o", "json", "--from-claim", "-f", site)
    pod = the_reader_pod(cluster)
    spec, (container,) = pod["spec"], pod["spec"]["containers"]
    assert container["image"] == "registry.example/lab/corejob-trainer:0.9.1"
    assert spec["volumes"] == [{"name": "runs", "persistentVolumeClaim": {
        "claimName": "lab-runs", "readOnly": True}}]  # fmt: skip
    assert container["volumeMounts"] == [{"name": "runs", "mountPath": "/runs",
                                          "subPath": "team-a", "readOnly": True}]  # fmt: skip
    assert container["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["securityContext"]["runAsUser"] == 1000
    assert (spec["serviceAccountName"], spec["imagePullSecrets"]) == (
        "corejob-trainer", [{"name": "lab-registry"}])  # fmt: skip
    assert (spec["nodeSelector"], spec["tolerations"]) == (SITE["nodeSelector"],
                                                           SITE["tolerations"])  # fmt: skip
    assert spec["restartPolicy"] == "Never" and spec["activeDeadlineSeconds"] == 300
    play_kubelet(cluster, pod, runs)
    assert reading.join() == ExitCode.OK
    out, err = capsys.readouterr()

    assert reader_pods(cluster) == []  # deleted once read
    shown = {row["job"]: row for row in json.loads(out)}
    assert shown[unseen]["best_val_bps"] == 0.3917 and shown[unseen]["source"] == "ledger"
    assert shown[unseen]["sweep"] == "daily" and shown[seen]["best_val_bps"] == 0.25
    assert "read 3 result.json file(s) on the checkpoints claim" in err
    assert "1 new, 1 already recorded, 1 unusable (below)" in err
    assert "broken-run/result.json: unreadable: JSONDecodeError" in err
    kept = ledger_config_maps(cluster)
    assert set(kept) == {unseen, seen}  # the run seen before is not recorded twice
    assert kept[unseen]["metadata"]["labels"]["corejob.dev/sweep"] == "daily"
    again = rows(corejob, "--sweep", "daily")  # no flag: the ledger has it now
    assert again[unseen]["best_val_bps"] == 0.3917 and set(again) == {unseen}
    read_twice = Background("results", "--from-claim", "-f", site)
    play_kubelet(cluster, the_reader_pod(cluster), runs)
    assert read_twice.join() == ExitCode.OK
    assert "0 new, 2 already recorded" in capsys.readouterr().err
    assert len(ledger_config_maps(cluster)) == 2


def test_a_failed_reader_is_one_line_and_its_pod_is_deleted(cluster, tmp_path, capsys):
    reading = Background("results", "--from-claim", "-f", site_file(tmp_path))
    name = the_reader_pod(cluster)["metadata"]["name"]
    cluster.operator.log(name, "PermissionError: [Errno 13] Permission denied: '/runs'")
    crashed = {"name": "reader", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}
    set_pod_status(cluster, name, {"phase": "Failed", "containerStatuses": [crashed]})

    assert reading.join() == ExitCode.JOB_FAILED
    (error,) = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert f"results reader pod {name} failed: exit code 1 (Error)" in error
    assert "last output: PermissionError: [Errno 13] Permission denied: '/runs'" in error
    assert reader_pods(cluster) == []


def test_a_reader_that_cannot_start_times_out_with_the_reason(cluster, tmp_path, capsys):
    reading = Background("results", "--from-claim", "-f", site_file(tmp_path),
                         "--claim-timeout", "3s")  # fmt: skip
    name = the_reader_pod(cluster)["metadata"]["name"]
    waiting = {
        "name": "reader",
        "image": "registry.example/lab/corejob-trainer:0.9.1",
        "state": {"waiting": {"reason": "ImagePullBackOff", "message": "pull denied"}},
    }
    set_pod_status(cluster, name, {"phase": "Pending", "containerStatuses": [waiting]})

    assert reading.join() == ExitCode.PENDING_TIMEOUT
    err = capsys.readouterr().err
    assert f"results reader pod {name} did not finish within 3s (phase Pending: " in err
    assert "cannot pull image registry.example/lab/corejob-trainer:0.9.1 (pull denied)" in err
    assert reader_pods(cluster) == []


def test_without_a_claim_there_is_nothing_to_read(cluster, corejob):
    refused = corejob("results", "--from-claim")

    assert refused.code == ExitCode.USAGE
    assert "checkpoints volume (/runs) of your jobs is emptyDir, not a claim" in refused.err
    assert reader_pods(cluster) == []


def test_a_role_without_pod_create_is_named(cluster, corejob, tmp_path):
    denial = ('pods is forbidden: User "alice" cannot create resource "pods" in API group "" '
              'in the namespace "team-a"')  # fmt: skip
    cluster.emulator.inject_fault("POST", "team-a/pods", 403, denial)

    refused = corejob("results", "--from-claim", "-f", site_file(tmp_path))

    assert refused.code == ExitCode.FORBIDDEN
    (line,) = refused.err.splitlines()
    assert "you may not 'create' pods/corejob-results-" in line
    assert "a Role granting 'create' on 'pods'" in line


def test_ctrl_c_while_waiting_still_deletes_the_reader(cluster, corejob, tmp_path, monkeypatch):
    def interrupt(_seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(KubeApi, "sleep", staticmethod(interrupt))  # the first wait is cut

    stopped = corejob("results", "--from-claim", "-f", site_file(tmp_path))

    assert stopped.code == ExitCode.INTERRUPTED
    created = [r for r in cluster.controller_requests()
               if r.method.value == "POST" and r.url.path.endswith("/pods")]  # fmt: skip
    assert len(created) == 1 and reader_pods(cluster) == []


def test_local_backends_have_no_claim_and_values_need_from_claim(corejob, tmp_path):
    refused = corejob("results", "--from-claim", "--backend", "local", "--runs-dir", str(tmp_path))

    assert refused.code == ExitCode.USAGE
    assert "--from-claim reads a cluster's checkpoints claim; the local backend" in refused.err
    unused = corejob("results", "-f", "site.yaml", "--backend", "local")
    assert unused.code == ExitCode.USAGE and "add --from-claim or leave them out" in unused.err
