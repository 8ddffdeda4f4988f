"""build_model: every bundled config and every component type builds, runs and trains."""

from __future__ import annotations

import pytest
import torch

from tests.support.model_fakes import fake_batches, fake_sessions
from trainer.configs.model_schema import COMPONENTS, KINDS
from trainer.contract.errors import ConfigError
from trainer.models import build_model
from trainer.models.config import available_model_configs, load_model_config, validate_model_config
from trainer.models.layers.norm_act import make_activation

BLOCK = {"conv_params": {"kernel_size": [3, 3, 3], "padding": [0, 1, 1]}, "norm_type": "rms"}


@pytest.mark.parametrize("name", available_model_configs())
def test_every_config_builds_and_predicts_per_session(name):
    sessions = fake_sessions()
    model = build_model(load_model_config(name), sessions)
    assert len(model.readouts) == len(sessions)
    for b, info in zip(fake_batches(sessions), sessions, strict=True):
        out = model(b["stim"], b["dataset_idx"], b["behavior"])
        assert out.shape == (6, info.n_units)
        assert torch.isfinite(out).all()


def _variant(kind: str, name: str) -> dict:
    """A small vision model with one component swapped for ``name``."""
    raw = {
        "frontend": {"type": "learnable_temporal", "params": {"kernel_size": 4, "num_channels": 2}},
        "convnet": {"type": "vanilla", "params": {"channels": [6], "block_configs": [BLOCK]}},
        "readout": "gaussian",
    }
    params = {
        ("frontend", "learnable_temporal"): {"kernel_size": 4, "num_channels": 2},
        ("frontend", "conv"): {"out_channels": 3, **BLOCK},
        ("frontend", "da"): {"filter_length": 8},
        ("frontend", "temporal_basis"): {"num_cosine_funcs": 3, "history_bins": 6},
        ("frontend", "adapter"): {"grid_size": 12},
        ("adapter", "adapter"): {"grid_size": 12},
        ("convnet", "resnet"): {"channels": [4, 6], "block_configs": [BLOCK, BLOCK]},
        ("convnet", "densenet"): {"channels": [4, 6], "block_configs": [BLOCK, BLOCK]},
        ("convnet", "vanilla"): {"channels": [6], "block_configs": [BLOCK]},
        ("recurrent", "convgru"): {"hidden_dim": 5},
        ("recurrent", "gru"): {"hidden_dim": 5},
        ("recurrent", "lstm"): {"hidden_dim": 5},
        ("modulator", "convgru"): {"hidden_dim": 5},
    }.get((kind, name), {})
    raw[kind] = {"type": name, "params": params}
    if kind == "history_encoder":
        raw["model_type"] = "v1multi_history"
    if kind == "readout" or (kind, name) in (("adapter", "adapter"), ("recurrent", "gru"),
                                             ("recurrent", "lstm")):  # fmt: skip
        raw["adapter"] = {"type": "adapter", "params": {"grid_size": 12}}  # one size per session
    return validate_model_config(raw, f"{kind}={name}")


@pytest.mark.parametrize(("kind", "name"), [(k, n) for k in KINDS for n in COMPONENTS[k]])
def test_every_component_type_builds_runs_and_backpropagates(kind, name):
    sessions = fake_sessions()
    model = build_model(_variant(kind, name), sessions)
    history = torch.randn(3, 5, 5) if kind == "history_encoder" else None
    for b, info in zip(fake_batches(sessions, batch=3), sessions, strict=True):
        h = history if b["dataset_idx"] == 0 else None
        out = model(b["stim"], b["dataset_idx"], b["behavior"], h)
        assert out.shape == (3, info.n_units)
        out.sum().backward()
    trained = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    # Everything trainable got a gradient (history MLPs only where history was given).
    assert [n for n in trained if not n.startswith("spike_history.1")] == []


def test_adapter_resamples_sessions_to_one_grid():
    config = _variant("adapter", "adapter")
    model = build_model(config, fake_sessions())
    b = fake_batches(fake_sessions())[0]
    assert model.adapters[0](b["stim"]).shape[-2:] == (12, 12)


def test_readout_bias_starts_at_mean_rates():
    sessions = fake_sessions()
    for activation in ("none", "softplus"):
        config = {**load_model_config("res_small"), "output_activation": activation}
        model = build_model(config, sessions)
        rates = torch.tensor(sessions[0].mean_rates)
        expected = rates.log() if activation == "none" else torch.log(torch.expm1(rates))
        assert torch.allclose(model.readouts[0].bias, expected, atol=1e-6), activation


def test_output_is_clamped_like_visioncore_trains_it():
    sessions = fake_sessions()
    for activation, floor in (("none", -20.0), ("softplus", 1e-8)):
        model = build_model({**load_model_config("res_small"), "output_activation": activation},
                            sessions)  # fmt: skip
        with torch.no_grad():
            model.readouts[0].bias.fill_(-1e4)
        b = fake_batches(sessions)[0]
        assert torch.all(model(b["stim"], 0) == floor)


def test_frontend_longer_than_lags_is_a_config_error():
    config = validate_model_config(
        {"frontend": {"type": "learnable_temporal", "params": {"kernel_size": 40}}}, "big.yaml"
    )
    with pytest.raises(ConfigError, match=r"big: frontend.params.kernel_size: 40 exceeds"):
        build_model(config, fake_sessions())


def test_sessions_must_share_lags():
    sessions = fake_sessions()
    odd = type(sessions[1])(**{**sessions[1].__dict__, "n_lags": 5})
    with pytest.raises(ConfigError, match="n_lags: sessions disagree"):
        build_model(load_model_config("res_small"), [sessions[0], odd])


def test_declared_behaviour_width_must_match_the_data():
    config = load_model_config("res_small_concat_gru")
    config["modulator"]["params"]["behavior_dim"] = 42
    with pytest.raises(ConfigError, match=r"behavior_dim: 42 but the sessions have 4 behaviour"):
        build_model(config, fake_sessions())


def test_v1_is_one_session_with_visioncores_singular_names():
    config = {**load_model_config("res_small"), "model_type": "v1"}
    with pytest.raises(ConfigError, match="model_type: 'v1' is one session"):
        build_model(config, fake_sessions())
    model = build_model(config, fake_sessions()[:1])
    names = {n.split(".")[0] for n, _ in model.state_dict().items()}
    assert {"readout", "frontend", "convnet"} <= names and "readouts" not in names


def test_log_softplus_is_stable_and_exact():
    act = make_activation("log_softplus")
    x = torch.tensor([-200.0, -79.0, -16.0, -3.0, 0.0, 4.0, 60.0], requires_grad=True)
    y = act(x)
    ref = torch.log(torch.nn.functional.softplus(x.detach().double())).float()
    assert torch.allclose(y[1:], ref[1:], rtol=1e-5, atol=1e-5)  # exact down to the floor
    assert y[0] == -80.0  # below it: the floor
    y.sum().backward()
    assert x.grad[0] == 0 and (x.grad[1:] > 0).all()


def test_image_too_small_for_a_valid_stem_is_a_config_error():
    sessions = fake_sessions(image_shapes=((8, 8),), units=(2,))
    with pytest.raises(ConfigError, match=r"sess0: image_shape: \(8, 8\) x 8 lags does not fit"):
        build_model(load_model_config("res_small"), sessions)  # 9x9 valid stem
