"""`make push` against a real registry server (Debian's docker-registry on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.podman import IMAGE_NAME, REPO, TrainerImage, podman_env
from tests.support.wait import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.container]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    """A throwaway plain-HTTP registry; yields its host:port."""
    server = shutil.which("docker-registry")
    assert server, "docker-registry not installed: run `make ci-system-deps`"
    address = f"127.0.0.1:{_free_port()}"
    config = tmp_path / "registry.yml"
    config.write_text(
        "version: 0.1\nlog: {level: error}\n"
        f"storage: {{filesystem: {{rootdirectory: {tmp_path / 'storage'}}}}}\n"
        f"http: {{addr: {address}}}\n"
    )
    proc = subprocess.Popen([server, "serve", str(config)], stderr=subprocess.DEVNULL)

    def answers() -> bool:
        assert proc.poll() is None, f"docker-registry exited {proc.returncode}"
        try:
            with urllib.request.urlopen(f"http://{address}/v2/", timeout=1):
                return True
        except OSError:
            return False

    try:
        wait_until(answers, 10, f"the registry to answer on {address}", interval=0.1)
        yield address
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _make_push(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "push"],
        cwd=REPO,
        env=podman_env({**os.environ, "ALLOW_DIRTY": "1", **env}),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_push_without_registry_says_what_to_set() -> None:
    proc = _make_push(REGISTRY="")
    assert proc.returncode != 0
    assert "set REGISTRY" in proc.stderr


def test_push_uploads_both_tags_and_prints_the_digest(
    trainer_image: TrainerImage, registry: str
) -> None:
    # The fixture's image is built from the current inputs; HEAD may have moved since it
    # was first tagged, so give it the tag `make push` looks for now.
    revision_tag = subprocess.run(
        ["bash", "-c", "source image/version.sh && image_tag"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    trainer_image.podman.run("tag", trainer_image.tag, f"{IMAGE_NAME}:{revision_tag}")

    proc = _make_push(REGISTRY=f"{registry}/lab", TLS_VERIFY="false")
    assert proc.returncode == 0, proc.stdout + proc.stderr

    base = f"http://{registry}/v2/lab/corejob-trainer"
    with urllib.request.urlopen(f"{base}/tags/list", timeout=10) as response:
        tags = set(json.load(response)["tags"])
    version_tags = {t for t in tags if re.fullmatch(r"\d+\.\d+\.\d+", t)}
    assert len(version_tags) == 1 and len(tags) == 2, tags
    printed = re.search(r"@(sha256:[0-9a-f]{64})", proc.stdout)
    assert printed, proc.stdout
    request = urllib.request.Request(
        f"{base}/manifests/{printed.group(1)}",
        method="HEAD",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Docker-Content-Digest"] == printed.group(1)
