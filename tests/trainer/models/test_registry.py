"""Registry: every bundled config and every registered component builds and runs."""

from __future__ import annotations

import pytest
import torch

from tests.support.model_fakes import fake_batches, fake_sessions
from trainer.contract.errors import ConfigError
from trainer.models import build_model, registry
from trainer.models.config import available_model_configs, load_model_config, validate_model_config


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
        "frontend": {"type": "learnable_temporal", "params": {"kernel_size": 4}},
        "convnet": {"type": "vanilla", "params": {"channels": [6], "kernel_sizes": [3]}},
        "readout": "gaussian",
    }
    raw[kind] = {"type": name}
    if kind == "readout" or (kind, name) == ("adapter", "adapter"):
        raw["adapter"] = {"type": "adapter", "params": {"grid_size": 12}}  # one size for linear
    return validate_model_config(raw, f"{kind}={name}")


@pytest.mark.parametrize(
    ("kind", "name"), [(k, n) for k in registry.KINDS for n in registry.names(k)]
)
def test_every_registered_component_builds_and_runs(kind, name):
    sessions = fake_sessions()
    model = build_model(_variant(kind, name), sessions)
    for b, info in zip(fake_batches(sessions, batch=3), sessions, strict=True):
        out = model(b["stim"], b["dataset_idx"], b["behavior"])
        assert out.shape == (3, info.n_units)
        out.sum().backward()  # every path is differentiable


def test_registry_covers_the_issue_components():
    expected = {
        "adapter": {"none", "adapter"},
        "frontend": {"none", "learnable_temporal"},
        "convnet": {"none", "resnet", "vanilla"},
        "modulator": {"none", "concat", "film", "convgru"},
        "recurrent": {"none", "convgru"},
        "readout": {"gaussian", "linear"},
    }
    for kind, names in expected.items():
        assert names <= set(registry.names(kind)), kind


def test_adapter_resamples_sessions_to_one_grid():
    config = _variant("adapter", "adapter")
    model = build_model(config, fake_sessions(image_shapes=((20, 20), (16, 16))))
    b = fake_batches(fake_sessions())[0]
    assert model.core.adapter(b["stim"]).shape[-2:] == (12, 12)


def test_gaussian_readout_samples_at_its_position():
    """A unit reads the feature map where its mean points (x, y in [-1, 1])."""
    model = build_model(load_model_config("res_small"), fake_sessions())
    readout = model.readouts[0].eval()
    fmap = torch.zeros(1, readout.features.shape[1], 9, 9)
    fmap[0, :, 2, 6] = 1.0  # row 2 (y), column 6 (x)
    with torch.no_grad():
        readout.mean.zero_()
        readout.mean[0] = torch.tensor([(6 + 0.5) / 9 * 2 - 1, (2 + 0.5) / 9 * 2 - 1])
        readout.features.fill_(1.0)
        readout.bias.zero_()
    with torch.no_grad():
        out = readout(fmap)[0]
    assert out[0] == pytest.approx(readout.features.shape[1])
    assert out[1:].abs().max() == 0


def test_readout_bias_starts_at_mean_rates():
    sessions = fake_sessions()
    for name, inverse in (("res_small", torch.log), ("res_small_softplus", None)):
        config = load_model_config("res_small")
        if inverse is None:
            config["output_activation"] = "softplus"
        model = build_model(config, sessions)
        rates = torch.tensor(sessions[0].mean_rates)
        expected = rates.log() if inverse else torch.log(torch.expm1(rates))
        assert torch.allclose(model.readouts[0].bias, expected, atol=1e-6), name


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


def test_log_softplus_is_stable_and_exact():
    from trainer.models.components.layers import make_activation

    act = make_activation("log_softplus")
    x = torch.tensor([-200.0, -79.0, -16.0, -3.0, 0.0, 4.0, 60.0], requires_grad=True)
    y = act(x)
    assert torch.isfinite(y).all()
    ref = torch.log(torch.nn.functional.softplus(x.detach().double())).float()
    assert torch.allclose(y[1:], ref[1:], rtol=1e-5, atol=1e-5)  # exact down to the floor
    assert y[0] == -80.0  # below it: the floor
    y.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert x.grad[0] == 0 and (x.grad[1:] > 0).all()
    bf16 = act(x.detach().bfloat16())  # the CPU/GPU mixed-precision path
    assert torch.isfinite(bf16).all() and torch.allclose(bf16.float()[1:], ref[1:], rtol=2e-2)


def test_valid_stem_padding_shrinks_only_the_stem_output():
    """stem_padding: valid -> blocks run on the (H - k + 1)^2 centre; same elsewhere."""
    sessions = fake_sessions(image_shapes=((20, 20),), units=(3,))
    base = load_model_config("res_small")
    stim = torch.zeros(2, 1, sessions[0].n_lags, 20, 20)
    sizes = {}
    for padding in ("same", "valid"):
        params = {**base["convnet"]["params"], "stem_padding": padding, "stem_kernel": 9}
        config = validate_model_config(
            {**base, "convnet": {"type": "resnet", "params": params}}, f"{padding}.yaml"
        )
        model = build_model(config, sessions)
        sizes[padding] = tuple(model.core(stim, None).shape[-2:])
        assert model(stim, 0).shape == (2, 3)
    assert sizes == {"same": (20, 20), "valid": (12, 12)}  # 20 - 9 + 1; blocks keep it


def test_image_too_small_for_a_valid_stem_is_a_config_error():
    sessions = fake_sessions(image_shapes=((8, 8),), units=(2,))
    with pytest.raises(ConfigError, match=r"sess0: image_shape: \(8, 8\) is too small"):
        build_model(load_model_config("res_small"), sessions)  # 9x9 valid stem
