"""Model config loading: every bundled config resolves; every mistake is one clear line."""

from __future__ import annotations

import pytest
import yaml

from trainer.configs import MODELS
from trainer.configs.families import V1, configs_of_family
from trainer.contract.errors import ConfigError
from trainer.models.config import available_model_configs, load_model_config, validate_model_config

REQUIRED = {"res_small", "res_small_gru", "res_small_concat_gru", "modulator_only_gru"}


def test_required_configs_are_bundled_and_resolve():
    assert set(available_model_configs()) >= REQUIRED
    for name in configs_of_family(MODELS, V1):  # video models: tests/trainer/configs/
        config = load_model_config(name)
        assert config["name"] == name
        assert config["readout"]["params"], "defaults are filled in"


def test_res_small_is_what_the_issue_asks_for():
    config = load_model_config("res_small")
    assert config["convnet"]["type"] == "resnet"
    assert config["recurrent"]["type"] == "none"
    assert config["readout"]["type"] == "gaussian"
    assert config["output_activation"] == "none"  # log-rate
    assert load_model_config("res_small_gru")["recurrent"]["type"] == "convgru"
    concat = load_model_config("res_small_concat_gru")
    assert (concat["modulator"]["type"], concat["recurrent"]["type"]) == ("concat", "convgru")
    behaviour_only = load_model_config("modulator_only_gru")
    assert {behaviour_only[k]["type"] for k in ("adapter", "frontend", "convnet")} == {"none"}


def _write(tmp_path, data, name="bad.yaml"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def _error(tmp_path, data) -> str:
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_model_config(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path))
    assert info.value.exit_code == 2
    return message


def test_unknown_component_type_lists_allowed(tmp_path):
    msg = _error(tmp_path, {"convnet": {"type": "densnet"}})
    assert "convnet.type" in msg and "'densnet'" in msg
    assert "densenet" in msg and "resnet" in msg and "vanilla" in msg and "none" in msg


def test_unknown_param_names_the_key_and_allowed_fields(tmp_path):
    msg = _error(tmp_path, {"convnet": {"type": "resnet", "params": {"chanels": [8]}}})
    assert "convnet.params.chanels" in msg and "channels" in msg and "stem_config" in msg
    block = {"conv_params": {"kernel_size": 3, "windw": "hann"}}
    msg = _error(
        tmp_path,
        {"convnet": {"type": "resnet", "params": {"channels": [8], "block_configs": [block]}}},
    )
    assert "convnet.params.block_configs[0].conv_params.windw" in msg and "aa_window" in msg


def test_bad_value_types_and_choices(tmp_path):
    msg = _error(tmp_path, {"recurrent": {"type": "convgru", "params": {"hidden_dim": "big"}}})
    assert "recurrent.params.hidden_dim" in msg and "expected int" in msg
    msg = _error(tmp_path, {"convnet": {"type": "resnet", "params": {"channels": [8, "x"]}}})
    assert "list of int" in msg
    params = {"channels": [8], "block_configs": [{"conv_params": {"kernel_size": 3}}],
              "final_activation": "tanhh"}  # fmt: skip
    msg = _error(tmp_path, {"convnet": {"type": "resnet", "params": params}})
    assert "convnet.params.final_activation" in msg and "splitrelu" in msg
    params["block_configs"] = [{"conv_params": {"kernel_size": 3}, "pool_params": {"type": "max"}}]
    params["final_activation"] = "relu"
    msg = _error(tmp_path, {"convnet": {"type": "resnet", "params": params}})
    assert "block_configs[0].pool_params.kernel_size: required for pool type 'max'" in msg
    msg = _error(tmp_path, {"output_activation": "exp"})
    assert "output_activation" in msg and "softplus" in msg
    msg = _error(tmp_path, {"readout": {"type": "gaussian", "params": {"initial_std": -1}}})
    assert "readout.params.initial_std" in msg and ">= 0" in msg


def test_unknown_top_level_and_component_fields(tmp_path):
    msg = _error(tmp_path, {"convnet": {"type": "resnet"}, "redout": {"type": "linear"}})
    assert ": redout: unknown field" in msg and "readout" in msg
    msg = _error(tmp_path, {"readout": {"type": "linear", "parms": {}}})
    assert "readout.parms" in msg


def test_vision_free_models_need_concat_and_linear(tmp_path):
    msg = _error(tmp_path, {"modulator": {"type": "film"}, "readout": {"type": "linear"}})
    assert "modulator.type" in msg and "concat" in msg and "convgru" in msg
    msg = _error(tmp_path, {"modulator": {"type": "concat"}, "readout": {"type": "gaussian"}})
    assert "readout.type" in msg and "linear" in msg


def test_invalid_yaml_and_unknown_names(tmp_path):
    msg = _error(tmp_path, "convnet: [unclosed\n")
    assert "invalid YAML" in msg
    with pytest.raises(ConfigError, match=r"unknown model config; available: .*res_small"):
        load_model_config("res_smal")
    with pytest.raises(ConfigError, match="file not found"):
        load_model_config(tmp_path / "missing.yaml")


def test_shorthand_and_defaults_resolve():
    block = {"conv_params": {"kernel_size": [1, 3, 3]}}
    convnet = {"type": "cnn", "params": {"channels": [4], "block_configs": [block]}}
    config = validate_model_config({"frontend": "learnable_temporal", "convnet": convnet}, "x")
    frontend = config["frontend"]["params"]
    assert frontend["kernel_size"] == 16 and frontend["num_channels"] == 6  # VisionCore's
    assert frontend["aa_window"] == "hann" and frontend["use_weight_norm"] is False
    assert config["recurrent"] == {"type": "none", "params": {}}
    assert config["readout"]["params"]["initial_std"] == 5.0  # floats stay floats
    assert config["convnet"]["type"] == "vanilla"  # VisionCore's alias


def test_config_reference_readme_is_current():
    from pathlib import Path

    from trainer.models.config import CONFIG_DIR, reference_markdown

    assert Path(CONFIG_DIR / "README.md").read_text() == reference_markdown(), (
        "regenerate: python -m trainer.configs.model_schema > trainer/configs/models/README.md"
    )


def test_block_defaults_are_visioncores_and_resolved():
    block = {"conv_params": {"kernel_size": [3, 5, 5]}}
    convnet = {"type": "resnet", "params": {"channels": [4], "block_configs": [block]}}
    resolved = validate_model_config({"convnet": convnet}, "x")["convnet"]["params"]
    b = resolved["block_configs"][0]
    assert (b["norm_type"], b["act_type"], b["causal"]) == ("batch", "relu", True)
    assert b["order"] == ["pad", "conv", "norm", "act", "dropout", "pool"]
    assert b["conv_params"]["padding_mode"] == "replicate" and b["conv_params"]["bias"] is None
    assert b["pool_params"]["type"] == "none"


def test_schema_imports_without_torch():
    """The controller validates model configs on a laptop: no torch behind the schema."""
    import subprocess
    import sys

    code = (
        "import sys; from trainer.configs.model_schema import load_model_config; "
        "load_model_config('res_small'); "
        "assert not any(m == 'torch' or m.startswith('torch.') for m in sys.modules), 'torch'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
