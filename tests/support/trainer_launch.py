"""Start trainer processes the way the launchers do (test helper, not a test module).

``launch_gang`` starts WORLD_SIZE separate ``python -m trainer`` OS processes with exactly
the variables a Kubeflow PyTorchJob injects into its pods (MASTER_ADDR, MASTER_PORT,
WORLD_SIZE, RANK) and ``OMP_NUM_THREADS=1``: no torchrun, no multiprocessing spawn.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.wait import wait_until
from trainer.contract.result import RESULT_LINE_PREFIX

TINY = ("--model_config", "res_small", "--dataset_configs_path", "synthetic_tiny")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    env.update(PYTHONUNBUFFERED="1", WANDB_MODE="disabled", **extra)
    return env


@dataclass
class Proc:
    """A trainer process whose stdout is collected line by line in the background."""

    popen: subprocess.Popen
    lines: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    def start_reader(self) -> None:
        def pump() -> None:
            for line in self.popen.stdout:
                self.lines.append(line.rstrip("\n"))

        self.reader = threading.Thread(target=pump, daemon=True)
        self.reader.start()

    def wait(self, timeout: float) -> int:
        code = self.popen.wait(timeout=timeout)
        if self.reader:
            self.reader.join(timeout=10)
        return code

    def wait_for_line(self, prefix: str, count: int = 1, timeout: float = 120) -> None:
        """Until ``count`` lines start with ``prefix``; fails at once if the process exits."""

        def seen() -> bool:
            exited = self.popen.poll() is not None
            if exited and self.reader:
                self.reader.join(timeout=10)  # the last lines may still be in the pipe
            if sum(line.startswith(prefix) for line in self.lines) >= count:
                return True
            if exited:
                raise AssertionError(f"process exited {self.popen.returncode} before {prefix!r}")
            return False

        try:
            wait_until(seen, timeout, f"{count}x {prefix!r} in the output")
        except AssertionError as error:
            raise AssertionError(f"{error}:\n{self.output}") from None

    def sigterm_handler_installed(self) -> bool:
        """Whether the process catches SIGTERM yet (``SigCgt`` in ``/proc/<pid>/status``).

        The CLI installs its handler first thing, before torch is imported; until then a
        SIGTERM would kill the interpreter outright. Fails at once if the process exited.
        """
        if self.popen.poll() is not None:
            raise AssertionError(f"process exited {self.popen.returncode}:\n{self.output}")
        status = Path(f"/proc/{self.popen.pid}/status").read_text()
        caught = next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:"))
        return bool(int(caught, 16) & (1 << (signal.SIGTERM - 1)))

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.popen.send_signal(signum)

    @property
    def output(self) -> str:
        return "\n".join(self.lines[-60:])

    def result(self) -> dict:
        found = [line for line in self.lines if line.startswith(RESULT_LINE_PREFIX)]
        assert len(found) == 1, f"expected one result line:\n{self.output}"
        return json.loads(found[0].removeprefix(RESULT_LINE_PREFIX))

    def weights_digest(self) -> str:
        found = [line for line in self.lines if line.startswith("COREJOB_WEIGHTS ")]
        assert len(found) == 1, self.output
        return found[0].rsplit("sha256=", 1)[1]


def start(args: Sequence[str], env: dict[str, str], cwd: Path) -> Proc:
    popen = subprocess.Popen(
        [sys.executable, "-m", "trainer", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    proc = Proc(popen)
    proc.start_reader()
    return proc


def launch_gang(args: Sequence[str], world_size: int, cwd: Path) -> list[Proc]:
    """One process per 'pod', as a PyTorchJob with WORLD_SIZE replicas starts them."""
    port = str(free_port())
    procs = []
    for rank in range(world_size):
        env = base_env(
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=port,
            WORLD_SIZE=str(world_size),
            RANK=str(rank),
            OMP_NUM_THREADS="1",
        )
        procs.append(start(args, env, cwd))
    return procs


def wait_for_file(path: Path, timeout: float) -> None:
    wait_until(path.exists, timeout, f"{path} to appear")


def kill_all(procs: Sequence[Proc]) -> None:
    for proc in procs:
        if proc.popen.poll() is None:
            proc.popen.kill()
    for proc in procs:
        proc.popen.wait(timeout=30)


def run_trainer(argv: list[str]) -> int:
    """``corejob-train ARGV`` in this process; restores the SIGTERM handler it installs."""
    from trainer.cli import run_cli

    previous = signal.getsignal(signal.SIGTERM)
    try:
        return run_cli(argv)
    finally:
        signal.signal(signal.SIGTERM, previous)
