"""AdamW groups: the core LR really is scaled; decay only on real >=2-D weights."""

from __future__ import annotations

import fnmatch

import pytest
import torch

from tests.support.model_fakes import fake_batches, fake_sessions
from trainer.configs.model_schema import validate_model_config
from trainer.contract.errors import ConfigError
from trainer.models import build_model
from trainer.models.config import available_model_configs, load_model_config
from trainer.optim.optimizer import OptimSettings, build_optimizer, no_decay_names, param_groups


def _model(name="res_small_concat_gru"):
    return build_model(load_model_config(name), fake_sessions())


def _groups(model, **settings):
    return {g["name"]: g for g in param_groups(model, OptimSettings(**settings))}


def test_core_lr_is_scaled_and_head_lr_is_not():
    model = _model()
    groups = _groups(model, learning_rate=2e-3, core_lr_scale=0.25, weight_decay=0.1)
    assert set(groups) == {"core_decay", "core_no_decay", "head_decay", "head_no_decay"}
    for name, group in groups.items():
        expected = 2e-3 * 0.25 if name.startswith("core") else 2e-3
        assert group["lr"] == pytest.approx(expected), name
        shared = ("frontend.", "convnet.", "modulator.", "recurrent.")
        assert all(n.startswith(shared) == name.startswith("core") for n in group["param_names"])
    every = sorted(n for g in groups.values() for n in g["param_names"])
    assert every == sorted(n for n, _ in model.named_parameters())  # each parameter exactly once


def test_scaled_core_lr_really_moves_the_core_less():
    """One AdamW step moves each parameter by about its group's LR (Adam's first step)."""
    model = _model("res_small")
    opt = build_optimizer(
        model, OptimSettings(learning_rate=1e-2, core_lr_scale=0.1, weight_decay=0)
    )
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    b = fake_batches(fake_sessions())[0]
    model(b["stim"], 0, b["behavior"]).sum().backward()
    opt.step()
    key = "convnet.stem.components.conv.conv.weight"
    stem = float((model.convnet.stem.components["conv"].conv.weight - before[key]).abs().max())
    key = "readouts.0.features.weight"
    feats = float((model.readouts[0].features.weight - before[key]).abs().max())
    assert stem == pytest.approx(1e-3, rel=0.01)
    assert feats == pytest.approx(1e-2, rel=0.01)


def test_decay_only_on_weights_and_never_on_positions_biases_or_norms():
    config = load_model_config("res_small")
    for block in config["convnet"]["params"]["block_configs"]:
        block["norm_type"] = "group"
    model = build_model(config, fake_sessions())
    groups = _groups(model, weight_decay=0.05)
    decay = set(groups["core_decay"]["param_names"] + groups["head_decay"]["param_names"])
    params = dict(model.named_parameters())
    assert all(params[n].ndim >= 2 for n in decay)
    for pattern in ("*.bias", "*norm*", "readouts.*.mean", "readouts.*.std"):
        matched = fnmatch.filter(params, pattern)
        assert matched, f"{pattern} must name real parameters"
        assert not decay & set(matched), pattern
    assert {"convnet.stem.components.conv.conv.weight", "readouts.0.features.weight"} <= decay
    assert groups["core_decay"]["weight_decay"] == 0.05
    assert groups["head_no_decay"]["weight_decay"] == 0.0


def _parametrized_model():
    """Every kind of parameter the decay rule distinguishes: weight norm with a trained
    magnitude, a window-only conv, GRN, a spectral-norm history MLP, an affine adapter."""
    config = load_model_config("res_small")
    config["model_type"] = "v1multi_history"
    config["adapter"] = {"type": "adapter", "params": {"grid_size": 12, "transform": "affine"}}
    config["frontend"]["params"].update(aa_signal=True, use_weight_norm=False)
    stem = config["convnet"]["params"]["stem_config"]
    stem["conv_params"].update(use_weight_norm=True, keep_unit_norm=False)
    stem["norm_type"] = "grn"
    config["history_encoder"] = {
        "type": "mlp", "params": {"num_lags": 2, "hidden_dims": [4], "spectral_norm": True}
    }  # fmt: skip
    return build_model(validate_model_config(config, "test"), fake_sessions())


def test_every_declared_exclusion_names_a_real_parameter():
    """``no_weight_decay``/``kernel_magnitudes`` entries are parameter names; a typo would
    silently decay (or not)."""
    declared_found = set()
    models = [build_model(load_model_config(n), fake_sessions()) for n in available_model_configs()]
    for model in [*models, _parametrized_model()]:
        params = dict(model.named_parameters())
        for prefix, module in model.named_modules():
            for attribute in ("no_weight_decay", "kernel_magnitudes"):
                for local in getattr(module, attribute, ()):
                    full = f"{prefix}.{local}"
                    assert full in params, full
                    declared_found.add(type(module).__name__ + "." + local)
    assert {
        "DynamicGaussianReadout.mean", "DynamicGaussianReadout.std", "WeightNorm.v",
        "WeightNorm.g", "GlobalResponseNorm.gamma", "AffineAdapter.affine", "Linear.weight_orig",
    } <= declared_found  # fmt: skip


def test_decay_reaches_every_kernel_through_its_magnitude():
    """What decay does to a kernel does not depend on its parametrization: with no gradient,
    one AdamW step shrinks every effective conv kernel (plain, windowed, weight-normed) by
    exactly ``1 - lr * wd``, and leaves what is not a weight alone."""
    model = _parametrized_model()
    skip = no_decay_names(model)
    stem = "convnet.stem.components.conv.conv.parametrizations.weight"
    window = "frontend.temporal_conv.conv.parametrizations.weight.original"
    assert f"{stem}.0.g" not in skip and window not in skip  # the magnitude, the windowed kernel
    not_weights = [
        f"{stem}.0.v", "convnet.stem.components.norm.gamma", "convnet.stem.components.norm.beta",
        "adapters.0.affine", "spike_history.0.mlp.0.linear.weight_orig",
    ]  # fmt: skip
    assert set(not_weights) <= skip
    lr, wd = 0.1, 0.5
    opt = build_optimizer(model, OptimSettings(learning_rate=lr, weight_decay=wd))
    convs = {
        "frontend": model.frontend.temporal_conv.conv,
        "stem": model.convnet.stem.components["conv"].conv,
        "block": model.convnet.layers[0].main_block.components["conv"].conv,
    }
    before = {k: c.weight.detach().clone() for k, c in convs.items()}
    params = dict(model.named_parameters())
    kept = {n: params[n].detach().clone() for n in not_weights}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for key, conv in convs.items():
        torch.testing.assert_close(conv.weight.detach(), before[key] * (1 - lr * wd), msg=key)
    for name, value in kept.items():
        assert torch.equal(params[name].detach(), value), name


def test_config_patterns_extend_exclusions_and_must_match(tmp_path):
    model = _model("res_small")
    names = no_decay_names(model, ["frontend.*"])
    assert "frontend.temporal_conv.conv.weight" in names
    with pytest.raises(ConfigError, match=r"res_small: weight_decay_exclude: pattern 'fronted.\*'"):
        no_decay_names(model, ["fronted.*"], source="res_small")


def test_frozen_parameters_are_left_out():
    model = _model("res_small")
    for p in model.core.parameters():
        p.requires_grad_(False)
    groups = _groups(model)
    assert set(groups) == {"head_decay", "head_no_decay"}


def test_optim_settings_reject_bad_values():
    with pytest.raises(ConfigError, match="--lr_scheduler: linear: unknown; allowed: cosine"):
        OptimSettings(lr_scheduler="linear")
    with pytest.raises(ConfigError, match="--core_lr_scale"):
        OptimSettings(core_lr_scale=-1)
    assert torch.optim.AdamW  # the optimizer class used
