"""podman for tests: the project's private configuration and the trainer image, built once.

This machine runs podman only with ``image/podman/containers.conf`` (runc runtime,
ulimits within the sandbox's hard limits), so every podman call from a test goes through
:class:`Podman`, which sets ``CONTAINERS_CONF``. The ``trainer_image`` fixture builds the
image with ``image/build.sh`` (the same path as ``make image``) at most once per session,
and not at all when an image built from identical inputs already exists: its tag carries
a hash of everything the Dockerfile reads.

Use from a conftest: ``from tests.support.podman import trainer_image  # noqa: F401``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONTAINERS_CONF = REPO / "image" / "podman" / "containers.conf"
IMAGE_NAME = "localhost/corejob-trainer"
# Everything image/Dockerfile COPYs or installs from (see .dockerignore's allow-list).
IMAGE_INPUTS = (
    "image/Dockerfile",
    "image/requirements.lock",
    "image/build.sh",
    "image/local-base.sh",
    ".dockerignore",
    "pyproject.toml",
    "README.md",
    "trainer",
    "corejob",
)
BUILD_TIMEOUT_S = 900
# Superseded test images older than this are removed after a build (disk space).
STALE_AFTER_S = 3600


def podman_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with the private podman config."""
    env = dict(os.environ if base is None else base)
    env["CONTAINERS_CONF"] = str(CONTAINERS_CONF)
    return env


@dataclass(frozen=True)
class Podman:
    """Runs podman with the project's configuration."""

    executable: str = "podman"

    @property
    def env(self) -> dict[str, str]:
        return podman_env()

    def command(self, *args: str) -> list[str]:
        return [self.executable, *args]

    def run(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run ``podman ARGS``; on failure with ``check`` the error shows podman's stderr."""
        proc = subprocess.run(
            self.command(*args), env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"podman {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(*args),
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )


@dataclass(frozen=True)
class TrainerImage:
    """A built trainer image: ``tag`` to run, ``podman`` to run it with."""

    tag: str
    podman: Podman


def _input_files(root: Path) -> Iterator[Path]:
    for name in IMAGE_INPUTS:
        path = root / name
        if path.is_file():
            yield path
            continue
        for file in sorted(path.rglob("*")):
            if file.is_file() and "__pycache__" not in file.parts and file.suffix != ".pyc":
                yield file


def image_inputs_hash(root: Path = REPO) -> str:
    """A digest of the image's inputs (paths and contents), 12 hex characters."""
    digest = hashlib.sha256()
    for file in _input_files(root):
        digest.update(str(file.relative_to(root)).encode() + b"\0")
        digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def build_trainer_image(podman: Podman | None = None) -> TrainerImage:
    """The image for the current inputs, building it only when no such image exists.

    A file lock serializes concurrent test sessions (engineers share this machine), so
    the second one reuses the first one's image instead of building again.
    """
    podman = podman or Podman()
    tag = f"{IMAGE_NAME}:test-{image_inputs_hash()}"
    lock_path = REPO / "build" / ".image-build.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if podman.run("image", "exists", tag, check=False).returncode != 0:
            _build(podman, tag)
            _remove_stale_images(podman, keep=tag)
    return TrainerImage(tag=tag, podman=podman)


def _remove_stale_images(podman: Podman, keep: str) -> None:
    """Remove earlier test and ``-dirty`` builds: each holds a 1.2 GB layer of its own.

    Only images older than :data:`STALE_AFTER_S` go, so a test session running next to
    this one keeps its image; only those images go (``podman rmi`` by ID once untagged),
    because a blanket ``image prune`` would also drop the intermediate images that are the
    build cache. Images a container still uses are refused by podman and stay.
    """
    images = json.loads(podman.run("images", "--format", "json", IMAGE_NAME).stdout or "[]")
    current = podman.run("image", "inspect", "--format", "{{.Id}}", keep).stdout.strip()
    cutoff = time.time() - STALE_AFTER_S
    for image in images:
        names = image.get("Names") or []
        disposable = [n for n in names if _is_disposable_tag(n)]
        if image["Id"] == current or image["Created"] > cutoff or not disposable:
            continue
        for name in disposable:
            podman.run("untag", image["Id"], name, check=False)
        if len(disposable) == len(names):
            podman.run("rmi", image["Id"], check=False)


def _is_disposable_tag(name: str) -> bool:
    tag = name.rsplit(":", 1)[-1]
    return tag.startswith("test-") or tag.endswith("-dirty")


def _build(podman: Podman, tag: str) -> None:
    env = podman_env({**os.environ, "ENGINE": "podman", "EXTRA_TAG": tag})
    proc = subprocess.run(
        ["bash", str(REPO / "image" / "build.sh")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        raise AssertionError(f"image/build.sh failed ({proc.returncode}):\n{tail}")


@pytest.fixture(scope="session")
def trainer_image() -> TrainerImage:
    """The trainer image, built (or found) once per test session."""
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed: run `make ci-system-deps`")
    return build_trainer_image()
