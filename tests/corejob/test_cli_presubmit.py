"""Broken configs fail before anything is created, with the trainer's own one line (issue 16).

The schemas are the trainer's (``trainer/configs/model_schema``, ``video_schema``,
``families``), imported without torch; the real API server's audit log shows that not a
single create request was sent.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from corejob.errors import ExitCode

BROKEN_MODEL = """\
model_type: v1multi
convnet:
  type: resnet
  params:
    kernel_sz: 3
"""
UNPARSABLE = "model_type: v1multi\nconvnet: [unclosed\n"


@pytest.fixture
def broken_model(tmp_path: Path) -> Path:
    path = tmp_path / "my_model.yaml"
    path.write_text(BROKEN_MODEL)
    return path


def test_an_unknown_field_fails_dry_run_and_submit_creating_nothing(kube, corejob, broken_model):
    for extra in (("--dry-run",), ()):
        result = corejob("submit", "-m", str(broken_model), "-d", "synthetic_tiny", *extra)
        assert result.code == ExitCode.USAGE and result.out == ""
        assert result.err.strip() == (
            f"corejob: error: {broken_model}: convnet.params.kernel_sz: unknown field for "
            "convnet 'resnet'; allowed: channels, block_configs, stem_config, final_activation, "
            "resnet_post_add_activation, base_channels, checkpointing, dim"
        )
    assert kube.requests("create") == []


def test_a_sweep_with_one_broken_cell_creates_nothing(kube, corejob, broken_model):
    result = corejob(
        "sweep", "--models", f"res_small,{broken_model}", "--datasets", "synthetic_tiny"
    )
    assert result.code == ExitCode.USAGE and "kernel_sz: unknown field" in result.err
    assert kube.requests("create") == []


def test_invalid_yaml_names_the_line(tmp_path: Path, corejob):
    path = tmp_path / "m.yaml"
    path.write_text(UNPARSABLE)
    result = corejob("render", "-m", str(path), "-d", "synthetic_tiny")
    assert result.code == ExitCode.USAGE
    assert result.err.startswith(f"corejob: error: {path}: line ")


def test_a_model_and_dataset_of_different_families_are_refused(corejob):
    result = corejob("render", "-m", "r3d_small", "-d", "synthetic_tiny")
    assert result.code == ExitCode.USAGE
    assert "is a v1 dataset but --model_config r3d_small is a video model" in result.err
    assert corejob("render", "-m", "r3d_small", "-d", "synthetic_views").code == ExitCode.OK


def test_a_video_model_is_checked_by_its_own_schema(tmp_path: Path, corejob):
    path = tmp_path / "video.yaml"
    path.write_text("family: video\nbackbone: {depth: small, chanels: [8]}\n")
    result = corejob("render", "-m", str(path), "-d", "synthetic_views")
    assert result.code == ExitCode.USAGE and "chanels" in result.err


@pytest.fixture
def broken_dataset(tmp_path: Path) -> Path:
    """synthetic_tiny with one op misspelt in its parent file (VisionCore's dialect)."""
    from trainer.configs import DATASETS, resolve_config

    source = resolve_config(DATASETS, "synthetic_tiny")
    path = tmp_path / "my_data.yaml"
    path.write_text(source.read_text().replace("- maxnorm: {}", "- maxnrom: {}"))
    shutil.copytree(source.with_suffix(""), tmp_path / "my_data")
    return path


def test_a_broken_dataset_config_fails_dry_run_and_submit_creating_nothing(
    kube, corejob, broken_dataset
):
    for extra in (("--dry-run",), ()):
        result = corejob("submit", "-m", "res_small", "-d", str(broken_dataset), *extra)
        assert result.code == ExitCode.USAGE and result.out == ""
        line = result.err.strip()
        assert line.startswith(
            f"corejob: error: {broken_dataset}: transforms.eye_vel.ops[1].maxnrom: "
        ), line
        assert "\n" not in line and "maxnorm" in line  # the allowed ops are listed
    assert kube.requests("create") == []


def test_a_dataset_session_file_is_checked_before_submit(tmp_path: Path, corejob, broken_dataset):
    broken_dataset.write_text(broken_dataset.read_text().replace("maxnrom", "maxnorm"))
    session = tmp_path / "my_data" / "tiny_gabor.yaml"
    session.write_text(session.read_text() + "stim_type: gaborium\n")
    result = corejob("render", "-m", "res_small", "-d", str(broken_dataset))
    assert result.code == ExitCode.USAGE
    assert result.err.startswith(f"corejob: error: {session}: stim_type: unknown field; allowed:")


def test_the_controller_stays_torch_free():
    code = "import sys, corejob.cli, corejob.job.spec; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_synthetic_generator_field_is_checked_before_submit(
    tmp_path: Path, kube, corejob, broken_dataset
):
    """The ``synthetic:`` block (presets, generator fields) is the schema's too: a typo in a
    session file fails the submit with the trainer's message, nothing created."""
    broken_dataset.write_text(broken_dataset.read_text().replace("maxnrom", "maxnorm"))
    session = tmp_path / "my_data" / "tiny_gabor.yaml"
    session.write_text(session.read_text().replace("rf_offset:", "rf_ofset:"))
    result = corejob("submit", "-m", "res_small", "-d", str(broken_dataset))
    assert result.code == ExitCode.USAGE and kube.requests("create") == []
    line = result.err.strip()
    assert line.startswith(f"corejob: error: {session}: synthetic.rf_ofset: unknown generator")
    assert "\n" not in line and "'rf_offset'" in line
