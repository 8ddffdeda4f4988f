"""``--pretrained_checkpoint`` (+ ``--pretrained_heads``) from a VisionCore checkpoint.

The core alone transfers to any sessions; the heads only onto the sessions they were
trained on, and then the whole imported network, and so its forward, is the checkpoint's.
"""

from __future__ import annotations

import pytest
import torch

from tests.support.visioncore_checkpoints import randomize, visioncore_checkpoint, visioncore_state
from tests.trainer.models.checkpoints.test_import import (
    CONFIGS,
    HISTORY,
    SESSIONS,
    _inputs,
    _raw,
    _source,
)
from trainer.configs.model_schema import load_model_config
from trainer.contract.errors import ConfigError
from trainer.models.build import build_model
from trainer.models.pretrained import CORE_STAGES, load_pretrained_core, load_pretrained_heads

NAMES = [(s.name, s.n_units) for s in SESSIONS]


def _fresh():
    model = build_model(load_model_config(CONFIGS / f"{HISTORY}.yaml"), SESSIONS)
    randomize(model, seed=9)
    return model.eval()


def test_core_then_heads_make_the_imported_network(tmp_path):
    source = _source(HISTORY)
    path = tmp_path / "vc.ckpt"
    state = visioncore_state(source, "visioncore", "parametrization", compiled=True)
    torch.save(visioncore_checkpoint(state, _raw(HISTORY)), path)
    target = _fresh()
    report = load_pretrained_core(target.core, path)
    expected = source.state_dict()
    core = [k for k in expected if k.split(".")[0] in CORE_STAGES]
    assert report.loaded == len(core) and report.kind == "VisionCore"
    assert all(torch.equal(target.state_dict()[k], expected[k]) for k in core)
    assert not torch.equal(target.readouts[0].features.weight, source.readouts[0].features.weight)
    loaded = load_pretrained_heads(target, path, NAMES)
    assert loaded == len(expected) - len(core)
    for key, value in expected.items():
        assert torch.equal(target.state_dict()[key], value), key
    stim, behavior, history = _inputs()
    with torch.no_grad():
        assert torch.equal(target(stim, 0, behavior, history), source(stim, 0, behavior, history))


def test_heads_refuse_other_sessions_in_one_line(tmp_path):
    path = tmp_path / "vc.ckpt"
    torch.save(visioncore_checkpoint(visioncore_state(_source(HISTORY)), _raw(HISTORY)), path)
    with pytest.raises(ConfigError) as error:
        load_pretrained_heads(_fresh(), path, [("vc_a", 5), ("vc_b", 4)])
    assert str(error.value) == (
        f"--pretrained_heads: {path}: the VisionCore checkpoint has readouts of [5, 3] units,"
        " the dataset ['vc_a', 'vc_b'] with [5, 4]: heads only load onto the sessions they"
        " were trained on"
    )
    ours = tmp_path / "ours.ckpt"  # our checkpoints also know the sessions' names
    state = {f"model.{k}": v for k, v in _source(HISTORY).state_dict().items()}
    torch.save({"state_dict": state, "corejob": {"sessions": [{"name": "x"}, {"name": "y"}]}}, ours)
    with pytest.raises(ConfigError, match=r"has \['x', 'y'\] with units \[5, 3\]"):
        load_pretrained_heads(_fresh(), ours, NAMES)
