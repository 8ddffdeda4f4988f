"""No container outlives a killed supervisor (issue 15).

A container, unlike a process, survives its ``run`` client: the backend must remove it.
The first test uses a stand-in engine whose "containers" are detached processes that
ignore their client's death, the worst case, so only an ``rm`` can end them; it runs in
a second. The second test does the same with podman and the trainer image (slow: the
image is built once per session when its inputs changed).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from corejob.backends.container.backend import ContainerBackend
from corejob.backends.local.store import process_alive
from corejob.job.state import JobState, summarize
from tests.support.local_jobs import script_job
from tests.support.podman import TrainerImage, trainer_image  # noqa: F401
from tests.support.wait import wait_until

# ``<engine> run|rm|stop|network|image``, as far as the runner uses them. A container is a
# process in a session of its own; its pid is kept in ``state/<name>.pid``.
FAKE_ENGINE = r"""#!PYTHON
import contextlib, os, signal, subprocess, sys, time
from pathlib import Path
state = Path(__file__).with_name("state")
state.mkdir(exist_ok=True)
args = sys.argv[1:]
with open(state / "calls", "a") as calls:
    calls.write(" ".join(args) + "\n")

def names(rest):
    return [a for i, a in enumerate(rest) if not a.startswith("-") and rest[i - 1] != "--time"]

def end(name, sig):
    pid_file = state / f"{name}.pid"
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid_file.read_text()), sig)
        pid_file.unlink()

if args[0] == "run":
    name = args[args.index("--name") + 1]
    box = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True
    )
    (state / f"{name}.pid").write_text(str(box.pid))
    sys.exit(box.wait())
if args[0] in ("rm", "stop"):
    for name in names(args[1:]):
        end(name, signal.SIGKILL if args[0] == "rm" else signal.SIGTERM)
"""


def fake_engine(tmp_path: Path) -> Path:
    engine = tmp_path / "engine" / "fake-podman"
    engine.parent.mkdir()
    engine.write_text(FAKE_ENGINE.replace("PYTHON", sys.executable, 1))
    engine.chmod(0o755)
    return engine


def finished_record(backend: ContainerBackend, name: str, timeout: float) -> dict:
    """The job as stored once it is finished; nobody calls ``get`` (the watchdog acts)."""
    return wait_until(
        lambda: (job := backend.store.read_job(name)) and summarize(job).state.finished and job,
        timeout,
        f"the watchdog to record job {name} as finished",
        interval=0.1,
    )


def test_a_killed_supervisor_leaves_no_container_running(tmp_path: Path):
    engine = fake_engine(tmp_path)
    state = engine.with_name("state")
    backend = ContainerBackend(tmp_path / "runs", engine=str(engine))
    backend.submit(script_job("boxed", "unused: the fake engine runs its own container"))
    pid_files = [state / "boxed-master-0.pid", state / "boxed-worker-0.pid"]
    wait_until(lambda: all(p.exists() for p in pid_files), 20, "both fake containers to start")
    boxes = [int(p.read_text()) for p in pid_files]
    supervisor = backend.store.read_supervisor("boxed")["pid"]
    os.kill(supervisor, signal.SIGKILL)

    summary = summarize(finished_record(backend, "boxed", 30))
    assert [pid for pid in boxes if process_alive(pid, None)] == [], "a container outlived it"
    assert summary.state is JobState.FAILED
    assert f"the local supervisor (pid {supervisor}) is gone" in summary.message
    calls = (state / "calls").read_text().splitlines()
    assert "rm --force --ignore --time=0 boxed-master-0 boxed-worker-0" in calls
    assert "network rm corejob-boxed" in calls


# In a container the stand-in is PID 1: it must handle SIGTERM itself (no tini in front).
STAND_IN = r"""
import os, signal, sys, time
run_dir = sys.argv[1]
os.makedirs(run_dir, exist_ok=True)
rank = os.environ["RANK"]
def on_term(signum, frame):
    open(os.path.join(run_dir, f"sigterm-{rank}"), "w").close()
    sys.exit(143)
signal.signal(signal.SIGTERM, on_term)
open(os.path.join(run_dir, f"up-{rank}"), "w").close()
time.sleep(300)
"""


@pytest.mark.slow
@pytest.mark.container
def test_podman_containers_stop_with_a_killed_supervisor(
    trainer_image: TrainerImage,  # noqa: F811
    tmp_path: Path,
):
    repository, tag = trainer_image.tag.rsplit(":", 1)
    job = script_job("pboxed", STAND_IN)
    for spec in job["spec"]["pytorchReplicaSpecs"].values():
        container = spec["template"]["spec"]["containers"][0]
        container["image"] = f"{repository}:{tag}"
        container["command"] = ["python", "-c", STAND_IN]
    backend = ContainerBackend(tmp_path, engine=trainer_image.podman.executable)
    assert backend.submit(job).created
    run_dir = tmp_path / "pboxed" / "volumes" / "runs" / "pboxed"

    def both_up() -> bool:
        if summarize(backend.get("pboxed")).state.finished:  # no point waiting any longer
            logs = "\n".join(backend.logs("pboxed", all_replicas=True))
            raise AssertionError(f"job pboxed ended before the test killed it:\n{logs}")
        return all((run_dir / f"up-{rank}").exists() for rank in (0, 1))

    wait_until(both_up, 90, "both containers to run the stand-in", interval=0.5)
    supervisor = backend.store.read_supervisor("pboxed")["pid"]
    os.kill(supervisor, signal.SIGKILL)

    summary = summarize(finished_record(backend, "pboxed", 90))
    names = trainer_image.podman.run("ps", "--all", "--format", "{{.Names}}").stdout.split()
    assert not {"pboxed-master-0", "pboxed-worker-0"} & set(names)
    assert summary.state is JobState.FAILED
    assert f"the local supervisor (pid {supervisor}) is gone" in summary.message
    for rank in (0, 1):  # asked to stop first (sig-proxy): the trainer would save last.ckpt
        assert (run_dir / f"sigterm-{rank}").exists()


@pytest.fixture(autouse=True)
def _no_leftover_jobs(tmp_path: Path):
    yield
    for runs in (tmp_path / "runs", tmp_path):
        engine = tmp_path / "engine" / "fake-podman"
        backend = ContainerBackend(runs, engine=str(engine) if engine.exists() else None)
        for name in backend.store.names():
            backend.cancel(name)
