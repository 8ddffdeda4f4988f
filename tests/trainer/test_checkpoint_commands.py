"""``corejob-train evaluate`` and fine-tuning from a VisionCore checkpoint, end to end.

A VisionCore-layout checkpoint of ``res_small`` for ``synthetic_tiny``'s sessions is built
in the test (our modules carry VisionCore's names). Its readouts predict each unit's mean
rate (features 0, bias log(rate)): the null model, worth exactly 0 bits/spike, so the
evaluated numbers are checked against a formula, not against themselves. Fine-tuning from
it (core and readouts) runs through ``train --pretrained_checkpoint --pretrained_heads``;
the corejob checkpoint it saves evaluates to the numbers the run itself logged, and
predicts what the restored model computes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import yaml

from tests.support.trainer_launch import run_trainer
from tests.support.visioncore_checkpoints import randomize, visioncore_checkpoint, visioncore_state
from trainer.configs.model_schema import load_model_config
from trainer.contract import exit_codes
from trainer.data import MultiDatasetDM, load_dataset_config
from trainer.models.build import build_model
from trainer.models.lightning_module import MultiDatasetModel

CONFIG = Path("trainer/configs/models/res_small.yaml")


@pytest.fixture(scope="module")
def vc_null_checkpoint(tiny_data, tmp_path_factory) -> tuple[Path, list]:
    """A VisionCore checkpoint of ``res_small`` whose readouts are the null model."""
    datamodule = MultiDatasetDM(load_dataset_config("synthetic_tiny", data_root=tiny_data), 8)
    datamodule.setup("fit")
    sessions = datamodule.sessions_info
    model = build_model(load_model_config(CONFIG), sessions)
    randomize(model, seed=3)
    with torch.no_grad():
        for readout, info in zip(model.readouts, sessions, strict=True):
            readout.features.weight.zero_()
            readout.bias.copy_(torch.tensor(info.mean_rates, dtype=torch.float64).log())
    path = tmp_path_factory.mktemp("vc-ckpt") / "visioncore.ckpt"
    raw = yaml.safe_load(CONFIG.read_text())
    torch.save(visioncore_checkpoint(visioncore_state(model, compiled=True), raw), path)
    return path, sessions


def _evaluate(ckpt: Path, data: Path, output: Path, *extra: str) -> list[str]:
    return [
        "evaluate", str(ckpt), "--dataset_configs_path", "synthetic_tiny",
        "--data_root", str(data), "--output", str(output), *extra,
    ]  # fmt: skip


def test_evaluate_a_visioncore_checkpoint_per_session(
    vc_null_checkpoint, tiny_data, tmp_path, capsys
):
    ckpt, sessions = vc_null_checkpoint
    out = tmp_path / "eval.json"
    assert run_trainer(_evaluate(ckpt, tiny_data, out)) == 0, capsys.readouterr().err
    report = json.loads(out.read_text())
    assert report["kind"] == "visioncore" and report["checkpoint"] == str(ckpt)
    assert [(r["session"], r["units"]) for r in report["sessions"]] == [
        (s.name, s.n_units) for s in sessions
    ]
    for row in report["sessions"]:
        assert abs(row["bits_per_spike"]) < 1e-4, row  # the null model: 0 bits/spike
        assert row["oracle_bits_per_spike"] > 0.05, row  # synthetic: the true rates' bps
    printed = capsys.readouterr().out.splitlines()
    table = printed[next(i for i, line in enumerate(printed) if line.startswith("session")) :]
    assert table[0].split() == ["session", "units", "bits/spike", "oracle"]
    for line, row in zip(table[1:], report["sessions"], strict=False):
        assert line.split()[:2] == [row["session"], str(row["units"])]
        assert float(line.split()[3]) == pytest.approx(row["oracle_bits_per_spike"], abs=1e-4)
    assert table[len(sessions) + 1].split()[0] == "overall"


def test_evaluate_refuses_a_dataset_with_other_readout_sizes(
    vc_null_checkpoint, tiny_data, tmp_path, capsys
):
    ckpt, sessions = vc_null_checkpoint
    code = run_trainer(_evaluate(ckpt, tiny_data, tmp_path / "e.json", "--max_datasets", "1"))
    err = capsys.readouterr().err
    assert code == exit_codes.CONFIG_ERROR and err.count("\n") == 1
    assert f"1 sessions ({sessions[0].name}) but {ckpt} has 2 readouts" in err


def test_fine_tune_from_a_visioncore_checkpoint_then_evaluate_and_predict(
    vc_null_checkpoint, tiny_data, tmp_path, capsys
):
    ckpt, sessions = vc_null_checkpoint
    run = tmp_path / "run"
    train = [
        "train", "--model_config", str(CONFIG), "--dataset_configs_path", "synthetic_tiny",
        "--data_root", str(tiny_data), "--run_dir", str(run), "--pretrained_checkpoint",
        str(ckpt), "--pretrained_heads", "--freeze_vision", "--max_epochs", "1",
        "--steps_per_epoch", "2",
        "--batch_size", "8", "--lr_scheduler", "none",
    ]  # fmt: skip
    assert run_trainer(train) == 0, capsys.readouterr().err[-2000:]
    source = torch.load(ckpt, weights_only=True)["state_dict"]
    stages = ("frontend", "convnet", "modulator", "recurrent")
    core = [k for k in source if k.startswith(tuple(f"model._orig_mod.{s}." for s in stages))]
    loaded = f"pretrained core: loaded {len(core)} tensors from {ckpt} (VisionCore;"
    printed = capsys.readouterr().out
    heads = len([k for k in source if k.startswith("model._orig_mod.readouts.")])
    assert len(core) > 5 and loaded in printed
    assert f"pretrained heads: loaded {heads} tensors for 2 sessions" in printed
    last = run / "checkpoints" / "last.ckpt"
    tuned = torch.load(last, weights_only=True)["state_dict"]
    for key in core:  # frozen: the imported core, bit for bit
        assert torch.equal(tuned[key.replace("_orig_mod.", "")], source[key]), key

    out = tmp_path / "eval.json"
    assert run_trainer(_evaluate(last, tiny_data, out)) == 0, capsys.readouterr().err
    report, logged = json.loads(out.read_text()), json.loads((run / "metrics.json").read_text())
    assert report["kind"] == "corejob"
    for row in report["sessions"]:  # what the run's own validation logged for these weights
        assert row["bits_per_spike"] == pytest.approx(logged["val_bps"][row["session"]], rel=1e-5)
        assert row["oracle_bits_per_spike"] == pytest.approx(logged["oracle_bps"][row["session"]])
        assert not math.isclose(row["bits_per_spike"], 0.0, abs_tol=1e-4)  # readouts trained

    info = sessions[1]
    stim = torch.rand(3, 1, info.n_lags, *info.image_shape)
    behavior = None
    inputs = {"stimulus": stim, "behavior": behavior, "history": None, "dataset_idx": 1}
    torch.save(inputs, tmp_path / "in.pt")
    predict = ["predict", "--checkpoint", str(last), "--inputs", str(tmp_path / "in.pt"),
               "--output", str(tmp_path / "out.pt")]  # fmt: skip
    assert run_trainer(predict) == 0, capsys.readouterr().err
    model = MultiDatasetModel.load_from_corejob_checkpoint(last).model.eval()
    with torch.no_grad():
        expected = model(stim, 1)
    assert torch.equal(torch.load(tmp_path / "out.pt", weights_only=True)["output"], expected)


def test_older_history_checkpoint_needs_model_config_and_is_flagged(
    vc_null_checkpoint, tiny_data, tmp_path, capsys
):
    """Only ``model_cfg`` saved: ``--model_config`` is required (and said so). A history
    model on data without spike history is evaluated without that term: the report says."""
    _, sessions = vc_null_checkpoint
    raw = yaml.safe_load(CONFIG.read_text())
    raw["model_type"] = "v1multi_history"
    raw["history_encoder"] = {"type": "mlp", "params": {"num_lags": 2, "hidden_dims": [4]}}
    config = tmp_path / "res_small_history.yaml"
    config.write_text(yaml.safe_dump(raw))
    model = build_model(load_model_config(config), sessions)
    ckpt = tmp_path / "old.ckpt"
    torch.save(visioncore_checkpoint(visioncore_state(model), None, "cfgs/history.yaml"), ckpt)
    out = tmp_path / "eval.json"
    assert run_trainer(_evaluate(ckpt, tiny_data, out)) == exit_codes.CONFIG_ERROR
    err = capsys.readouterr().err
    assert "model_cfg='cfgs/history.yaml'" in err and "pass --model_config" in err
    assert run_trainer(_evaluate(ckpt, tiny_data, out, "--model_config", str(config))) == 0
    assert "gives no spike history: these numbers are without it" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["history_used"] is False and len(report["sessions"]) == len(sessions)
