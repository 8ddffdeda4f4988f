"""One version string: the package, the chart, the image tag and `corejob --version` agree."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import yaml

import trainer
from corejob import __version__
from corejob.job.spec import DEFAULT_IMAGE

REPO = Path(__file__).resolve().parents[1]


def test_every_place_that_names_the_version_agrees() -> None:
    chart = yaml.safe_load((REPO / "charts/corejob/Chart.yaml").read_text())
    image_version = subprocess.run(
        ["bash", "-c", "source image/version.sh && image_version"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    cli = subprocess.run(
        [sys.executable, "-m", "corejob", "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert {
        "trainer package": trainer.__version__,
        "installed distribution": importlib.metadata.version("corejob"),
        "Chart.yaml version": chart["version"],
        "Chart.yaml appVersion": chart["appVersion"],
        "image tag (image/version.sh)": image_version,
        "default image tag": DEFAULT_IMAGE["tag"],
        "corejob --version": cli.removeprefix("corejob "),
    } == dict.fromkeys(
        [
            "trainer package",
            "installed distribution",
            "Chart.yaml version",
            "Chart.yaml appVersion",
            "image tag (image/version.sh)",
            "default image tag",
            "corejob --version",
        ],
        __version__,
    )
