"""What ties replicas to their supervisor, with real processes and real signals.

Each test starts a stand-in "supervisor" (a small Python program), kills it with
SIGKILL, the one signal it cannot act on, and observes what the kernel and the watchdog
do about the processes it leaves behind.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from corejob.backends.local.processes import stop_leftovers
from corejob.backends.local.store import process_alive, process_start_time
from tests.support.wait import wait_until

# A parent that starts one child with die_with_parent() and reports the child's pid.
# The child records the signal it gets, so the test sees SIGTERM (a saved checkpoint),
# not just a dead process.
PARENT = r"""
import subprocess, sys, time
from corejob.backends.local.processes import die_with_parent
out = sys.argv[1]
child = subprocess.Popen(
    [sys.executable, "-c", '''
import signal, sys, time
def on_term(signum, frame):
    open(sys.argv[1] + ".signal", "w").write(str(signum))
    sys.exit(143)
signal.signal(signal.SIGTERM, on_term)
open(sys.argv[1] + ".ready", "w").close()
time.sleep(300)
''', out],
    start_new_session=True,
    preexec_fn=die_with_parent(),
)
print(child.pid, flush=True)
time.sleep(300)
"""

# A parent that forks a watchdog, which writes a file once the parent has died.
WATCHED = r"""
import os, sys, time
from corejob.backends.local.processes import start_watchdog
out = sys.argv[1]
def on_death():
    open(out, "w").write(f"parent {os.getppid()} gone")
print(start_watchdog(on_death), flush=True)
time.sleep(300)
"""


def start(program: str, out: Path) -> tuple[subprocess.Popen[str], int]:
    """Run ``program`` (repository importable); returns it and the pid it prints first."""
    parent = subprocess.Popen(
        [sys.executable, "-c", program, str(out)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[4],
    )
    assert parent.stdout is not None
    return parent, int(parent.stdout.readline())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_replica_gets_sigterm_when_its_supervisor_is_killed(tmp_path: Path):
    out = tmp_path / "child"
    parent, child = start(PARENT, out)
    wait_until(lambda: Path(f"{out}.ready").exists(), 15, "the child to install its handler")
    assert process_alive(child, None) and not Path(f"{out}.signal").exists()
    parent.kill()
    parent.wait()
    wait_until(lambda: not process_alive(child, None), 10, "the child to die with its parent")
    assert Path(f"{out}.signal").read_text() == str(int(signal.SIGTERM))


def test_the_watchdog_acts_once_its_supervisor_is_killed(tmp_path: Path):
    out = tmp_path / "watchdog-saw"
    parent, watchdog = start(WATCHED, out)
    assert process_alive(watchdog, None)
    assert not out.exists()  # the watchdog waits while its supervisor lives
    parent.kill()
    parent.wait()
    note = wait_until(lambda: out.exists() and out.read_text(), 10, "the watchdog's note")
    assert note.startswith("parent ") and note.endswith(" gone")
    wait_until(lambda: not process_alive(watchdog, None), 10, "the watchdog to exit")


def test_stop_leftovers_ends_whole_process_groups(tmp_path: Path):
    """A replica (group leader) and the child it spawned: both gone when it returns.

    The leader's SIGTERM handler records the signal, so the test also sees that it was
    asked to stop (and could save a checkpoint) before anything was killed.
    """
    marker = tmp_path / "term"
    leader_code = (
        "import signal, subprocess, sys, time\n"
        "def on_term(signum, frame):\n"
        f"    open({str(marker)!r}, 'w').write('term')\n"
        "    sys.exit(143)\n"
        "signal.signal(signal.SIGTERM, on_term)\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(300)\n"
    )
    leader = subprocess.Popen(
        [sys.executable, "-c", leader_code], stdout=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    assert leader.stdout is not None
    child = int(leader.stdout.readline())
    record = {
        "pid": None,
        "replicas": {
            "master-0": {"pid": leader.pid, "start_time": process_start_time(leader.pid)},
            "worker-0": {"phase": "Pending"},  # no pid: nothing to stop
        },
    }
    stop_leftovers(record, grace_s=10)
    assert leader.wait(timeout=1) == 143 and marker.read_text() == "term"
    assert not process_alive(child, None), "the replica's child outlived stop_leftovers"
