"""Two-process DDP launched exactly as a PyTorchJob launches it (one OS process per pod).

Each process gets only MASTER_ADDR/MASTER_PORT/WORLD_SIZE/RANK and OMP_NUM_THREADS=1,
like a pod of a two-replica job; no torchrun, no spawn.
"""

import json
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.support.trainer_launch import (
    TINY,
    base_env,
    free_port,
    kill_all,
    launch_gang,
    wait_for_file,
)
from trainer.contract import exit_codes
from trainer.contract.distributed import DEFAULT_DDP_TIMEOUT_S
from trainer.contract.result import RESULT_LINE_PREFIX
from trainer.models.lightning_module import MultiDatasetModel
from trainer.run import weights_digest

pytestmark = pytest.mark.slow


def _args(data, *extra: str) -> list[str]:
    return [*TINY, "--run_dir", "run", "--data_root", str(data), "--batch_size", "64", *extra]


def test_killed_gang_restarts_from_last_ckpt_and_finishes_with_identical_weights(
    tmp_path, tiny_data
):
    args = _args(tiny_data, "--max_epochs", "3")
    last = tmp_path / "run/checkpoints/last.ckpt"
    first = launch_gang(args, 2, tmp_path)
    try:
        first[0].wait_for_line("COREJOB_EPOCH", timeout=240)
        wait_for_file(last, timeout=60)
    finally:
        kill_all(first)  # SIGKILL both "pods" mid-run, as a node loss would
    saved_step = torch.load(last, weights_only=False)["global_step"]
    assert saved_step > 0

    second = launch_gang(args, 2, tmp_path)  # the operator restarts the gang
    codes = [proc.wait(timeout=240) for proc in second]
    assert codes == [0, 0], second[0].output + second[1].output
    result = second[0].result()
    assert result["resumed_from"] == "run/checkpoints/last.ckpt"
    assert result["world_size"] == 2 and result["epochs"] == 3
    history = json.loads((tmp_path / "run/history.json").read_text())
    assert [h["epoch"] for h in history] == [0, 1, 2]  # epochs before the kill are kept
    steps_per_epoch = history[0]["global_step"]
    assert result["global_step"] == 3 * steps_per_epoch > saved_step
    resumed_epochs = [line for line in second[0].lines if line.startswith("COREJOB_EPOCH")]
    assert len(resumed_epochs) == 3 - saved_step // steps_per_epoch  # no epoch trained twice
    # Both ranks end with the same weights, and the checkpoint holds exactly them.
    assert second[0].weights_digest() == second[1].weights_digest() == result["weights_sha256"]
    assert (
        weights_digest(MultiDatasetModel.load_from_corejob_checkpoint(last))
        == (result["weights_sha256"])
    )


def test_sigterm_to_one_replica_stops_both_at_the_same_step_with_exit_143(tmp_path, tiny_data):
    gang = launch_gang(_args(tiny_data, "--max_epochs", "200"), 2, tmp_path)
    try:
        # After the heartbeat SIGTERM handling is armed: no sleep needed before signalling.
        gang[1].wait_for_line("COREJOB_EPOCH", timeout=240)
        gang[1].signal(signal.SIGTERM)  # only the worker pod is evicted
        codes = [proc.wait(timeout=120) for proc in gang]
    finally:
        kill_all(gang)
    assert codes == [exit_codes.PREEMPTED] * 2, gang[0].output + gang[1].output
    checkpoint = torch.load(tmp_path / "run/checkpoints/last.ckpt", weights_only=False)
    stopped = [line for p in gang for line in p.lines if "preempted" in line]
    assert len(stopped) == 2 and all(f"step {checkpoint['global_step']}" in s for s in stopped)
    assert {"optimizer_states", "loops", "corejob", "callbacks"} <= set(checkpoint)


def test_a_killed_peer_makes_the_survivor_exit_129_within_the_ddp_timeout(tmp_path, tiny_data):
    timeout_s = 30
    # A deliberately wide bound: it only has to tell the configured 30 s timeout (or an
    # immediate connection error) from the default one, which is 20x longer. A bound
    # close to 30 s would flake on a loaded machine.
    bound_s = 3 * timeout_s
    assert bound_s < DEFAULT_DDP_TIMEOUT_S / 2
    args = _args(tiny_data, "--max_epochs", "200", "--ddp_timeout_s", str(timeout_s))
    gang = launch_gang(args, 2, tmp_path)
    try:
        gang[0].wait_for_line("COREJOB_EPOCH", timeout=240)
        gang[1].popen.kill()
        killed_at = time.monotonic()
        code = gang[0].wait(timeout=bound_s + 30)
        elapsed = time.monotonic() - killed_at
    finally:
        kill_all(gang)
    assert code == exit_codes.DISTRIBUTED_FAILURE, gang[0].output
    assert elapsed < bound_s, f"the survivor took {elapsed:.0f} s"
    assert "distributed communication failed" in gang[0].output


def test_torchrun_two_processes_in_one_pod_as_nproc_per_node_2(tmp_path, tiny_data):
    """``nprocPerNode: 2``: the container runs torchrun, configured only by PET_* vars."""
    env = base_env(
        PET_NNODES="1",
        PET_NPROC_PER_NODE="2",
        PET_NODE_RANK="0",
        PET_MASTER_ADDR="127.0.0.1",
        PET_MASTER_PORT=str(free_port()),
        OMP_NUM_THREADS="1",
    )
    args = ["-m", "torch.distributed.run", "-m", "trainer", "train"]
    popen = subprocess.run(
        [sys.executable, *args, *_args(tiny_data, "--max_epochs", "1")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert popen.returncode == 0, popen.stdout[-3000:] + popen.stderr[-3000:]
    lines = popen.stdout.splitlines()  # both ranks share stdout, as in a pod
    weights = dict(line.split(" ", 2)[1:] for line in lines if line.startswith("COREJOB_WEIGHTS"))
    result = json.loads((tmp_path / "run/metrics.json").read_text())
    assert result["world_size"] == 2 and set(weights) == {"rank=0", "rank=1"}
    assert set(weights.values()) == {f"sha256={result['weights_sha256']}"}
    assert sum(line.startswith(RESULT_LINE_PREFIX) for line in lines) == 1
