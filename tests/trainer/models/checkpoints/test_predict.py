"""``corejob-train predict``: a VisionCore checkpoint's responses, through the real CLI.

The expected output is the source model's own forward (readout, history term, output
activation, baseline, clamp) on the same inputs; wrong inputs are one line naming the key.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.support.trainer_launch import run_trainer
from tests.support.visioncore_checkpoints import visioncore_checkpoint, visioncore_state
from tests.trainer.models.checkpoints.test_import import HISTORY, _inputs, _raw, _source
from trainer.contract import exit_codes

MODULATOR_ONLY = "modulator_only_convgru"


def _checkpoint(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.ckpt"
    state = visioncore_state(_source(name), "torch", "parametrization", compiled=True)
    torch.save(visioncore_checkpoint(state, _raw(name)), path)
    return path


def _predict(tmp_path: Path, ckpt: Path, inputs: dict) -> tuple[int, Path]:
    source, out = tmp_path / "in.pt", tmp_path / "out.pt"
    torch.save(inputs, source)
    argv = ["predict", "--checkpoint", str(ckpt), "--inputs", str(source), "--output", str(out)]
    return run_trainer(argv), out


def test_predict_returns_the_models_forward_for_a_history_model(tmp_path, capsys):
    stim, behavior, history = _inputs()
    history = history[..., :3]  # session 1 has 3 units
    code, out = _predict(
        tmp_path,
        _checkpoint(tmp_path, HISTORY),
        {"stimulus": stim, "behavior": behavior, "history": history, "dataset_idx": 1},
    )
    assert code == 0, capsys.readouterr().err
    assert "output (4, 3)" in capsys.readouterr().out
    result = torch.load(out, weights_only=True)
    assert set(result) == {"output"}
    with torch.no_grad():
        expected = _source(HISTORY)(stim, 1, behavior, history)
    assert torch.equal(result["output"], expected)
    assert not list(tmp_path.glob(".out.pt.*"))  # written atomically: no temporary left


def test_predict_modulator_only_takes_no_stimulus(tmp_path, capsys):
    _, behavior, _ = _inputs()
    inputs = {"stimulus": None, "behavior": behavior, "history": None, "dataset_idx": 0}
    code, out = _predict(tmp_path, _checkpoint(tmp_path, MODULATOR_ONLY), inputs)
    assert code == 0, capsys.readouterr().err
    with torch.no_grad():
        expected = _source(MODULATOR_ONLY)(None, 0, behavior)
    assert torch.equal(torch.load(out, weights_only=True)["output"], expected)


BAD_INPUTS = [
    ({"history": None}, "stimulus: missing (give None when unused)"),
    ({"stimulus": torch.zeros(4, 1, 17, 12)}, "stimulus: (4, 1, 17, 12); expected a tensor"),
    ({"stimulus": torch.zeros(4, 1, 17, 12, 12, dtype=torch.uint8)}, "stimulus: dtype torch.uint8"),
    ({"behavior": torch.zeros(4, 40)}, "behavior: shape (4, 40); expected (B, 42)"),
    ({"history": torch.zeros(4, 5, 3)}, "history: shape (4, 5, 3); expected (B, 5, 5)"),
    ({"behavior": torch.zeros(3, 42)}, "behavior: batch of 3, the other inputs have 4"),
    ({"dataset_idx": 2}, "dataset_idx: 2; an int in [0, 2)"),
    ({"stim": None}, "stim: unknown key"),
]


def test_wrong_inputs_fail_with_one_line_naming_the_key(tmp_path, capsys):
    ckpt = _checkpoint(tmp_path, HISTORY)
    stim, behavior, history = _inputs()
    good = {"stimulus": stim, "behavior": behavior, "history": history, "dataset_idx": 0}
    for change, expected in BAD_INPUTS:
        inputs = {**good, **change}
        if "history" in change and change["history"] is None:
            del inputs["stimulus"]
        code, out = _predict(tmp_path, ckpt, inputs)
        err = capsys.readouterr().err.strip()
        assert code == exit_codes.CONFIG_ERROR, err
        assert err.count("\n") == 0 and f"in.pt: {expected}" in err, err
        assert not out.exists()


@pytest.mark.parametrize("content", [b"not a torch file", None])
def test_unreadable_inputs_name_the_file(tmp_path, capsys, content):
    ckpt, source = _checkpoint(tmp_path, MODULATOR_ONLY), tmp_path / "in.pt"
    if content is None:
        torch.save([torch.zeros(2)], source)
    else:
        source.write_bytes(content)
    argv = ["predict", "--checkpoint", str(ckpt), "--inputs", str(source), "--output", "o.pt"]
    assert run_trainer(argv) == exit_codes.DATA_ERROR
    err = capsys.readouterr().err
    assert f"{source}: " in err and err.count("\n") == 1
