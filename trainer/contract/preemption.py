"""SIGTERM = preemption: save a complete ``last.ckpt``, then exit 143 (docs/CONTRACT.md).

Kubernetes sends SIGTERM to every container of an evicted pod and SIGKILLs it after the
grace period. A handler may run at any bytecode boundary, in the middle of a DDP
collective, so it only *records* the signal. ``trainer.callbacks.checkpointing.MidEpochCheckpoint``
turns it into action at a point where every rank is between optimizer steps: the ranks
agree (max all-reduce, so a signal seen by any one rank stops all of them at the same
step), all call ``trainer.save_checkpoint`` (rank 0 writes, atomically), and
:class:`Preempted` unwinds to the CLI, which exits 143.

Lightning installs its own SIGTERM handler when ``fit`` starts; it broadcasts from
inside the handler, which can interleave with a collective already in flight. We
re-install ours from ``on_train_start`` (after Lightning's), so ours is the one that runs.
Outside training (setup, data generation, the final report) there is nothing new worth
saving, so the handler raises :class:`Preempted` at once. This module imports nothing
heavy: the CLI installs the handler before torch is imported, because a container's PID 1
without a handler ignores SIGTERM and would only die by SIGKILL (exit 137, not 143).
"""

from __future__ import annotations

import os
import signal
from types import FrameType

from trainer.contract import exit_codes


class Preempted(BaseException):
    """Raised to unwind a preempted run; a BaseException so generic handlers don't eat it."""

    exit_code = exit_codes.PREEMPTED


class SigtermFlag:
    """Records SIGTERM; raises immediately unless a training loop has armed it."""

    def __init__(self) -> None:
        self.received = False
        self.armed = False
        self._pid = os.getpid()

    def handle(self, signum: int, frame: FrameType | None) -> None:
        # Forked DataLoader workers inherit the handler; only the trainer process acts.
        # A repeated signal must not interrupt the shutdown the first one started.
        if os.getpid() != self._pid or self.received:
            return
        self.received = True
        if not self.armed:
            raise Preempted(f"received signal {signum} outside the training loop")

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self.handle)
