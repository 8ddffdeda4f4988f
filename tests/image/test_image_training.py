"""The image trains the way a PyTorchJob runs it: pods named by the operator, its env,
a shared checkpoint volume, and SIGTERM (preemption) turned into last.ckpt + exit 143."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.support.podman import TrainerImage
from tests.support.wait import wait_until
from trainer.contract.result import RESULT_LINE_PREFIX

pytestmark = [pytest.mark.slow, pytest.mark.container]

MASTER_PORT = "23456"
TINY_RUN = ("--model_config", "res_small", "--dataset_configs_path", "synthetic_tiny")
TINY_RUN += ("--data_root", "/data", "--batch_size", "16")


def _pod_args(job: str, runs: Path, data: Path) -> list[str]:
    """podman run options matching the chart's pod: read-only root, /tmp, /dev/shm, volumes.

    ``:U`` chowns the host directories to the image user, as fsGroup does in the pod.
    """
    return [
        "--read-only",
        "--tmpfs",
        "/tmp",
        "--shm-size",
        "256m",
        "-v",
        f"{runs}:/runs:U",
        "-v",
        f"{data}:/data:U",
        "-e",
        "OMP_NUM_THREADS=1",
        "-e",
        f"COREJOB_JOB_NAME={job}",
        "-e",
        "WANDB_MODE=disabled",
    ]


@pytest.fixture
def job(trainer_image: TrainerImage) -> Iterator[str]:
    """A unique job name; removes its containers and network afterwards."""
    name = f"imgtest-{secrets.token_hex(3)}"
    yield name
    podman = trainer_image.podman
    podman.run("rm", "-f", "-i", "-t", "0", f"{name}-master-0", f"{name}-worker-0", check=False)
    podman.run("network", "rm", "-f", f"{name}-net", check=False)


def _wait(image: TrainerImage, container: str, timeout: float) -> int:
    proc = image.podman.run("wait", container, timeout=timeout)
    return int(proc.stdout.split()[0])


def test_two_pods_train_together_and_checkpoint_to_the_volume(
    trainer_image: TrainerImage, job: str, tmp_path: Path
) -> None:
    podman = trainer_image.podman
    runs, data = tmp_path / "runs", tmp_path / "data"
    runs.mkdir(), data.mkdir()
    podman.run("network", "create", f"{job}-net")
    pods = {f"{job}-master-0": "0", f"{job}-worker-0": "1"}
    env = ["-e", f"MASTER_ADDR={job}-master-0", "-e", f"MASTER_PORT={MASTER_PORT}"]
    env += ["-e", "WORLD_SIZE=2"]
    train = ["train", *TINY_RUN, "--run_dir", f"/runs/{job}", "--max_epochs", "1"]
    train += ["--steps_per_epoch", "3"]
    for pod, rank in pods.items():
        podman.run(
            "run", "-d", "--name", pod, "--hostname", pod, "--network", f"{job}-net",
            *_pod_args(job, runs, data), *env, "-e", f"RANK={rank}",
            trainer_image.tag, *train,
        )  # fmt: skip
    codes = {pod: _wait(trainer_image, pod, timeout=300) for pod in pods}
    logs = {pod: _logs(trainer_image, pod) for pod in pods}
    assert codes == dict.fromkeys(pods, 0), logs

    result_lines = [
        line for line in logs[f"{job}-master-0"].splitlines() if line.startswith(RESULT_LINE_PREFIX)
    ]
    assert len(result_lines) == 1
    result = json.loads(result_lines[0].removeprefix(RESULT_LINE_PREFIX))
    assert result["world_size"] == 2
    assert result["global_step"] == 3
    assert (runs / job / "checkpoints" / "last.ckpt").stat().st_size > 0
    assert json.loads((runs / job / "metrics.json").read_text())["world_size"] == 2
    # DDP keeps replicas identical: both ranks end with the same weights.
    digests = {
        line.split("sha256=")[1]
        for text in logs.values()
        for line in text.splitlines()
        if line.startswith("COREJOB_WEIGHTS")
    }
    assert len(digests) == 1


def _logs(image: TrainerImage, container: str) -> str:
    proc = image.podman.run("logs", container, check=False)
    return proc.stdout + proc.stderr


def _wait_for_log(image: TrainerImage, container: str, marker: str, timeout: float) -> str:
    def logged() -> str | None:
        text = _logs(image, container)
        if marker in text:
            return text
        state = image.podman.run("inspect", "-f", "{{.State.Running}}", container).stdout
        assert state.strip() == "true", f"{container} ended before `{marker}`:\n{text}"
        return None

    return wait_until(logged, timeout, f"`{marker}` in the log of {container}", interval=1)


def _heartbeat_steps(logs: str) -> list[int]:
    """Global steps of the epoch-end heartbeats (``COREJOB_EPOCH ... step=N ...``)."""
    return [int(m) for m in re.findall(r"^COREJOB_EPOCH .*?\bstep=(\d+)", logs, re.MULTILINE)]


def test_podman_stop_saves_last_ckpt_and_exits_143(
    trainer_image: TrainerImage, job: str, tmp_path: Path
) -> None:
    """SIGTERM in the middle of an epoch: the checkpoint must hold that mid-epoch step.

    Epoch ends also write ``last.ckpt``, so its existence alone proves nothing; a
    checkpoint written by the preemption handler is past the last epoch-end heartbeat.
    """
    podman = trainer_image.podman
    runs, data = tmp_path / "runs", tmp_path / "data"
    runs.mkdir(), data.mkdir()
    pod = f"{job}-master-0"
    train = ["train", *TINY_RUN, "--run_dir", f"/runs/{job}", "--max_epochs", "1000"]
    podman.run("run", "-d", "--name", pod, *_pod_args(job, runs, data), trainer_image.tag, *train)
    # The heartbeat is printed at the end of epoch 1 while SIGTERM handling is armed: from
    # then on a SIGTERM is acted on at the next batch end, which lies inside a later epoch
    # (past the last heartbeat), so no sleep "into the next epoch" is needed.
    _wait_for_log(trainer_image, pod, "COREJOB_EPOCH", timeout=180)

    podman.run("stop", "-t", "60", pod, timeout=90)  # SIGTERM; SIGKILL only after 60 s
    code = int(podman.run("inspect", "-f", "{{.State.ExitCode}}", pod).stdout)
    logs = _logs(trainer_image, pod)

    assert code == 143, logs[-3000:]  # >= 128: the operator's ExitCode policy retries it
    assert "preempted" in logs
    last = runs / job / "checkpoints" / "last.ckpt"
    step = torch.load(last, map_location="cpu", weights_only=False)["global_step"]
    assert step > max(_heartbeat_steps(logs)), "last.ckpt is an epoch-end save, not SIGTERM's"
