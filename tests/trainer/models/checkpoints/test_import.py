"""VisionCore checkpoints import bit for bit: every layout VisionCore (or torch) writes.

Checkpoints are built in the test from our own modules (VisionCore's names) with VisionCore's
copied model configs: a gaussian-readout ResNet and a DenseNet with concat modulator,
ConvGRU and a spectral-normed spike-history MLP (weight norm with and without unit norm).
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
import yaml

from tests.support.visioncore_checkpoints import randomize, visioncore_checkpoint, visioncore_state
from trainer.configs.model_schema import load_model_config
from trainer.contract.errors import ConfigError, DataError
from trainer.data.datasets import SessionInfo
from trainer.models.build import build_model
from trainer.models.checkpoints.files import VISIONCORE, read_checkpoint_model
from trainer.models.checkpoints.restore import build_restored, check_sessions

CONFIGS = Path(__file__).parents[1] / "visioncore_configs"
RESNET = "learned_resnet_none_none_gaussian"
HISTORY = "learned_dense_concat_convgru_gaussian_history"
SESSIONS = [
    SessionInfo("vc_a", 5, 17, (12, 12), 42, (), "backimage"),
    SessionInfo("vc_b", 3, 17, (12, 12), 42, (), "gaborium"),
]


@functools.cache
def _source(name: str, seed: int = 0):  # shared, never modified: tests build their own copies
    model = build_model(load_model_config(CONFIGS / f"{name}.yaml"), SESSIONS)
    randomize(model, seed)
    return model.eval()


def _save(tmp_path: Path, ckpt: dict, name: str = "vc.ckpt") -> Path:
    path = tmp_path / name
    torch.save(ckpt, path)
    return path


def _raw(name: str) -> dict:
    return yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())


def _inputs(seed: int = 5):
    g = torch.Generator().manual_seed(seed)
    stim = torch.randn(4, 1, 17, 12, 12, generator=g)
    behavior = torch.randn(4, 42, generator=g)
    history = torch.poisson(torch.full((4, 5, 5), 0.5), generator=g)
    return stim, behavior, history


LAYOUTS = [  # (VisionCore's own weight-norm layout with a plain prefix: the other tests)
    (RESNET, "torch", "legacy", True),
    (HISTORY, "visioncore", "legacy", False),
    (HISTORY, "torch", "parametrization", True),
]


@pytest.mark.parametrize(("name", "weight_norm", "spectral", "compiled"), LAYOUTS)
def test_import_restores_every_tensor_and_the_forward(
    tmp_path, name, weight_norm, spectral, compiled
):
    source = _source(name)
    state = visioncore_state(source, weight_norm, spectral, compiled)
    path = _save(tmp_path, visioncore_checkpoint(state, _raw(name)))
    ckpt = read_checkpoint_model(path)
    assert ckpt.kind == VISIONCORE and ckpt.units == (5, 3) and ckpt.ignored == ()
    check_sessions(ckpt, SESSIONS, "dataset.yaml")
    restored = build_restored(ckpt, SESSIONS)
    ours = restored.state_dict()
    assert ours.keys() == source.state_dict().keys()
    wn_originals = [k for k in state if k.endswith("parametrizations.weight.original0")]
    for key, value in source.state_dict().items():
        if weight_norm == "torch" and key.endswith("weight.original"):
            continue  # torch's layout has no such tensor; checked below
        assert ours[key].dtype == value.dtype and torch.equal(ours[key], value), key
    if weight_norm == "torch":
        assert wn_originals, "the config has weight-normed convs"
        for key in wn_originals:  # `original` (read by neither forward) = g * v / |v|
            stem = key.removeprefix("model._orig_mod.").removeprefix("model.")[: -len("0")]
            norm = source.get_submodule(stem.removesuffix(".original") + ".0")
            torch.testing.assert_close(ours[stem], norm(None), rtol=1e-6, atol=1e-7)
    stim, behavior, history = _inputs()
    with torch.no_grad():
        for idx in (0, 1):
            hist = history[..., : SESSIONS[idx].n_units] if name == HISTORY else None
            expected = source(stim, idx, behavior, hist)
            assert torch.equal(restored(stim, idx, behavior, hist), expected)


def test_spectral_and_weight_norm_layouts_really_differ_from_ours():
    """The layouts the importer maps are not ours already (the test above would be void)."""
    state = visioncore_state(_source(HISTORY), "torch", "parametrization")
    assert any(k.endswith(".parametrizations.weight.original1") for k in state)
    assert any(k.endswith(".parametrizations.weight.0._u") for k in state)
    assert not any(k.endswith((".weight_u", ".0.g")) for k in state)


def test_older_checkpoint_with_only_model_cfg_needs_model_config(tmp_path):
    source = _source(RESNET)
    ckpt = visioncore_checkpoint(visioncore_state(source), None, "exp/learned_resnet.yaml")
    path = _save(tmp_path, ckpt)
    with pytest.raises(ConfigError) as error:
        read_checkpoint_model(path)
    message = str(error.value)
    assert "\n" not in message and "--model_config" in message
    assert "model_cfg='exp/learned_resnet.yaml'" in message
    restored = build_restored(
        read_checkpoint_model(path, str(CONFIGS / f"{RESNET}.yaml")), SESSIONS
    )
    for key, value in source.state_dict().items():
        assert torch.equal(restored.state_dict()[key], value), key


def test_readout_size_that_does_not_match_the_dataset_is_one_line(tmp_path):
    path = _save(tmp_path, visioncore_checkpoint(visioncore_state(_source(RESNET)), _raw(RESNET)))
    ckpt = read_checkpoint_model(path)
    other = [SESSIONS[0], SessionInfo("vc_b", 7, 17, (12, 12), 42, (), "gaborium")]
    with pytest.raises(ConfigError) as error:
        check_sessions(ckpt, other, "multi.yaml")
    assert str(error.value) == (
        f"multi.yaml: sessions[1] vc_b: 7 units in the dataset config, 3 in readout 1 of {path}"
    )
    with pytest.raises(ConfigError, match=r"1 sessions \(vc_a\) but .* has 2 readouts"):
        check_sessions(ckpt, SESSIONS[:1], "multi.yaml")


def test_a_config_that_builds_another_network_names_the_tensors(tmp_path):
    raw = _raw(RESNET)
    raw["convnet"]["params"]["channels"] = [8, 8]  # not the checkpoint's network
    path = _save(tmp_path, visioncore_checkpoint(visioncore_state(_source(RESNET)), raw))
    with pytest.raises(ConfigError, match=r"state_dict: does not fit model .*: "):
        build_restored(read_checkpoint_model(path), SESSIONS)


class _Custom:  # a class a weights-only load may not construct
    pass


def test_a_checkpoint_needing_full_unpickling_is_refused_unless_trusted(tmp_path):
    ckpt = visioncore_checkpoint(visioncore_state(_source(RESNET)), _raw(RESNET))
    ckpt["hyper_parameters"]["extra"] = _Custom()
    path = _save(tmp_path, ckpt)
    with pytest.raises(DataError) as error:
        read_checkpoint_model(path)
    message = str(error.value)
    assert "\n" not in message and "--trust_checkpoint" in message
    assert f"needs full unpickling, which can run code (it refers to {__name__}._Custom)" in message
    assert read_checkpoint_model(path, trust=True).units == (5, 3)


def test_damaged_and_foreign_files_fail_naming_the_file(tmp_path):
    truncated = _save(tmp_path, visioncore_checkpoint(visioncore_state(_source(RESNET)), None))
    truncated.write_bytes(truncated.read_bytes()[:2000])
    with pytest.raises(DataError, match=f"^{truncated}: not a readable checkpoint"):
        read_checkpoint_model(truncated)
    weights = _save(tmp_path, {"weights": [torch.ones(2)]}, "weights.pt")
    with pytest.raises(DataError, match=f"^{weights}: holds no state_dict"):
        read_checkpoint_model(weights)
    no_config = _save(tmp_path, {"state_dict": {"model.readouts.0.bias": torch.zeros(2)}}, "x")
    with pytest.raises(ConfigError, match=r"neither a corejob checkpoint .* nor a VisionCore"):
        read_checkpoint_model(no_config)


def test_half_a_weight_norm_pair_is_named(tmp_path):
    state = visioncore_state(_source(RESNET), "torch")
    key = next(k for k in state if k.endswith(".original1"))
    del state[key]
    path = _save(tmp_path, visioncore_checkpoint(state, _raw(RESNET)))
    with pytest.raises(DataError) as error:
        read_checkpoint_model(path)
    stem = key.removeprefix("model.").removesuffix(".original1")
    assert str(error.value) == (
        f"{path}: state_dict: {stem}.original1 (weight norm's v) is missing next to original0"
    )
