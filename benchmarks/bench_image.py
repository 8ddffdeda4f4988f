"""The trainer image: what it weighs and how fast a pod gets to training.

1. Size: the whole image, its base, and the layer a code change ships (``/opt/corejob``;
   the dependency layers stay cached on nodes across trainer releases).
2. Cold start: ``podman run`` → the end of the first training step, with the data volume
   already populated (a pod's typical case). The trainer prints no per-step line, so the
   run has one 1-step epoch with one validation batch and the clock stops at its
   ``COREJOB_EPOCH`` heartbeat. The same command without a container gives the baseline,
   and the difference is what the container costs.

The image is the one the tests use (tests/support/podman.py: built once, reused).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.podman import Podman, TrainerImage, build_trainer_image

ROUNDS = 3
HEARTBEAT = "COREJOB_EPOCH"
TRAIN_ARGS = ["train", "--model_config", "res_small", "--dataset_configs_path", "synthetic_tiny"]
TRAIN_ARGS += ["--max_epochs", "1", "--steps_per_epoch", "1", "--limit_val_batches", "1"]
TRAIN_ARGS += ["--batch_size", "16", "--resume", "never"]


def _row(name: str, value: float, unit: str, target: str, ok: bool | None) -> dict[str, Any]:
    return {"name": name, "value": round(value, 3), "unit": unit, "target": target, "ok": ok}


def _seconds_to_heartbeat(command: list[str], env: dict[str, str] | None = None) -> float:
    """Wall time from launching ``command`` to its first heartbeat line on stdout."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    assert proc.stdout is not None
    elapsed = None
    for line in proc.stdout:
        if elapsed is None and line.startswith(HEARTBEAT):
            elapsed = time.perf_counter() - started
    if proc.wait(timeout=300) != 0 or elapsed is None:
        raise RuntimeError(f"{' '.join(command[:4])}... exited {proc.returncode} without training")
    return elapsed


def _size_rows(image: TrainerImage, podman: Podman) -> list[dict[str, Any]]:
    inspect = json.loads(podman.run("image", "inspect", image.tag).stdout)[0]
    total_mb = inspect["Size"] / 1e6
    base = json.loads(podman.run("image", "inspect", "localhost/corejob-base:bookworm").stdout)
    app = podman.run("run", "--rm", "--entrypoint", "du", image.tag, "-sk", "/opt/corejob")
    app_mb = int(app.stdout.split()[0]) / 1e3
    return [
        _row("image size (CPU torch, Debian base)", total_mb, "MB", "<= 1600", total_mb <= 1600),
        _row("  of which base (python3, tini)", base[0]["Size"] / 1e6, "MB", "", None),
        _row("  code layer a trainer change ships", app_mb, "MB", "<= 10", app_mb <= 10),
    ]


def _cold_start_rows(image: TrainerImage, podman: Podman, work: Path) -> list[dict[str, Any]]:
    data = work / "data"
    data.mkdir()
    container = podman.command("run", "--rm", "--read-only", "--tmpfs", "/tmp")
    container += ["-e", "OMP_NUM_THREADS=1", "-e", "WANDB_MODE=disabled"]
    container += ["-v", f"{data}:/data:U", image.tag, *TRAIN_ARGS]
    container += ["--data_root", "/data", "--run_dir", "/tmp/run"]
    host = [sys.executable, "-m", "trainer", *TRAIN_ARGS, "--data_root", str(data)]
    host += ["--run_dir", str(work / "host-run")]
    _seconds_to_heartbeat(container, podman.env)  # populates /data, warms the page cache
    in_container = [_seconds_to_heartbeat(container, podman.env) for _ in range(ROUNDS)]
    on_host = [
        _seconds_to_heartbeat(host, {**podman.env, "OMP_NUM_THREADS": "1"}) for _ in range(ROUNDS)
    ]
    cold, bare = statistics.median(in_container), statistics.median(on_host)
    return [
        _row("cold start: podman run -> first step done", cold, "s", "<= 20", cold <= 20),
        _row("same run without a container", bare, "s", "", None),
        _row("container overhead", cold - bare, "s", "<= 3", cold - bare <= 3),
    ]


def run() -> list[dict[str, Any]]:
    image = build_trainer_image()
    podman = image.podman
    with tempfile.TemporaryDirectory(prefix="bench-image-") as work:
        return _size_rows(image, podman) + _cold_start_rows(image, podman, Path(work))
