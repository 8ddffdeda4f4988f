"""AdamW groups: the core LR really is scaled; decay only on real >=2-D weights."""

from __future__ import annotations

import fnmatch

import pytest
import torch

from tests.support.model_fakes import fake_batches, fake_sessions
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


def test_every_declared_exclusion_names_a_real_parameter():
    """``no_weight_decay`` entries are parameter names; a typo would silently decay."""
    declared_found = set()
    for name in [*available_model_configs()]:
        model = build_model(load_model_config(name), fake_sessions())
        params = dict(model.named_parameters())
        for prefix, module in model.named_modules():
            for local in getattr(module, "no_weight_decay", ()):
                full = f"{prefix}.{local}"
                assert full in params, full
                declared_found.add(type(module).__name__ + "." + local)
    assert {"DynamicGaussianReadout.mean", "DynamicGaussianReadout.std"} <= declared_found


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
