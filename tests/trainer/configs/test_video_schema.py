"""The video family's schemas and the family rule: pure, strict, one line per error."""

from __future__ import annotations

import subprocess
import sys

import pytest

from trainer.configs import DATASETS, MODELS, available_configs
from trainer.configs.families import VIDEO, config_family, run_family
from trainer.configs.video_schema import VideoDatasetConfig, VideoModelConfig
from trainer.contract.errors import ConfigError


def test_schemas_and_family_rule_import_without_torch():
    code = (
        "import sys; import trainer.configs.video_schema, trainer.configs.families;"
        " import trainer.video.options, trainer.video.cli;"
        " assert 'torch' not in sys.modules, 'torch imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_bundled_video_configs_validate_and_declare_their_family():
    from tests.trainer.video.conftest import bundled

    video_models = [n for n in available_configs(MODELS) if config_family(MODELS, n) == VIDEO]
    video_data = [n for n in available_configs(DATASETS) if config_family(DATASETS, n) == VIDEO]
    assert {"r3d_small", "r3d_18"} <= set(video_models)
    assert {"synthetic_views", "synthetic_views_tiny"} <= set(video_data)
    for name in video_models:
        VideoModelConfig.from_dict(bundled(MODELS, name), name)
    for name in video_data:
        VideoDatasetConfig.from_dict(bundled(DATASETS, name), name)
    assert config_family(MODELS, "res_small") == "v1"  # no family key: V1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"fusion": "sum"}, "x.yaml: fusion: 'sum' unknown; allowed: mean, max, attention"),
        ({"backbone": {"depth": "50"}}, "x.yaml: backbone.depth: '50' unknown; allowed: small"),
        ({"backbone": {"channels": [16, 32], "blocks": [1]}}, "backbone.blocks: [1] needs one"),
        ({"head": {"dropout": 1.5}}, "x.yaml: head.dropout: 1.5 must be in [0.0, 0.9]"),
        ({"backbone": {"width": 3}}, "x.yaml: backbone.width: unknown key; allowed: depth"),
    ],
)
def test_bad_model_fields_are_one_line_naming_file_field_and_value(data, message):
    with pytest.raises(ConfigError) as caught:
        VideoModelConfig.from_dict(data, "x.yaml")
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "d.yaml: tasks: None: name at least one of shape, motion, colour"),
        ({"tasks": {"size": {}}}, "d.yaml: tasks.size: unknown task"),
        ({"tasks": {"shape": {"classes": ["disk", "blob"]}}}, "'blob' unknown; allowed: disk"),
        ({"tasks": {"motion": {"label_noise": 0.8}}}, "label_noise: 0.8 leaves no signal"),
        ({"tasks": {"colour": {}}, "views": 9}, "d.yaml: views: 9 must be in [1, 8]"),
        ({"tasks": {"colour": {}}, "frames": "8"}, "d.yaml: frames: '8' is not a number"),
    ],
)
def test_bad_dataset_fields_are_one_line(data, message):
    with pytest.raises(ConfigError) as caught:
        VideoDatasetConfig.from_dict(data, "d.yaml")
    assert message in str(caught.value)


def test_a_run_mixing_families_is_refused_in_one_line(tmp_path):
    assert run_family("r3d_small", "synthetic_views") == VIDEO
    with pytest.raises(ConfigError, match="is a v1 dataset but --model_config r3d_small is a"):
        run_family("r3d_small", "synthetic_tiny")
    odd = tmp_path / "odd.yaml"
    odd.write_text("family: audio\n")
    with pytest.raises(ConfigError, match="family: 'audio' unknown; allowed: v1, video"):
        config_family(MODELS, odd)
