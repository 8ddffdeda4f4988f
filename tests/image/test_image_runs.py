"""The built image: non-root, read-only root, metadata, and nothing but the runtime inside."""

from __future__ import annotations

import json

import pytest

from corejob import __version__
from tests.support.podman import TrainerImage

pytestmark = [pytest.mark.slow, pytest.mark.container]

# How the chart runs the pod: read-only root, only /tmp writable, no extra capabilities.
LOCKED_DOWN = ("--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL")
LOCKED_DOWN += ("--security-opt", "no-new-privileges")


def _config(image: TrainerImage) -> dict:
    out = image.podman.run("image", "inspect", image.tag).stdout
    return json.loads(out)[0]["Config"]


def test_help_runs_as_the_image_user_on_a_read_only_root(trainer_image: TrainerImage) -> None:
    proc = trainer_image.podman.run("run", "--rm", *LOCKED_DOWN, trainer_image.tag, "--help")
    assert "usage: corejob-train" in proc.stdout
    assert _config(trainer_image)["User"] == "1000:1000"


def test_help_runs_as_an_arbitrary_uid(trainer_image: TrainerImage) -> None:
    """OpenShift-style clusters pick the uid; the image must not depend on being 1000."""
    args = ("run", "--rm", *LOCKED_DOWN, "--user", "4242:4242", trainer_image.tag)
    proc = trainer_image.podman.run(*args, "train", "--help")
    assert "--model_config" in proc.stdout


def test_entrypoint_is_the_trainer_behind_an_init(trainer_image: TrainerImage) -> None:
    config = _config(trainer_image)
    assert config["Entrypoint"] == ["/usr/bin/tini", "-g", "--", "corejob-train"]
    assert config["Env"] and any(e == "HOME=/tmp" for e in config["Env"])


def test_oci_labels_name_source_revision_and_version(trainer_image: TrainerImage) -> None:
    labels = _config(trainer_image)["Labels"]
    assert labels["org.opencontainers.image.version"] == __version__
    assert len(labels["org.opencontainers.image.revision"]) == 40  # a full git sha
    assert labels["org.opencontainers.image.source"]


# Paths inside the image (never the host's) where a build would leave caches or sources:
# pip and apt caches, and the Dockerfile's bind-mount targets for sources and wheels.
BUILD_LEFTOVERS_IN_IMAGE = (
    "/root/.cache", "/tmp/.cache", "/var/lib/apt/lists/deb*", "/src", "/wheels",
)  # fmt: skip


def test_final_stage_has_no_compilers_package_tools_or_caches(
    trainer_image: TrainerImage,
) -> None:
    script = (
        "for tool in gcc cc g++ make pip pip3; do "
        "  command -v $tool >/dev/null && echo found:$tool; done; "
        "python3 -c 'import pip' 2>/dev/null && echo found:pip-module; "
        f"for d in {' '.join(BUILD_LEFTOVERS_IN_IMAGE)}; do "
        "  [ -e $d ] && echo found:$d; done; "
        "echo checked"
    )
    args = ("run", "--rm", "--entrypoint", "/bin/sh", trainer_image.tag, "-c", script)
    out = trainer_image.podman.run(*args).stdout
    assert out.strip().endswith("checked")
    found = [line for line in out.splitlines() if line.startswith("found:")]
    assert found == [], found
