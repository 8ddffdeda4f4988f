"""The extras inside real training runs (real data module, model, CLI, DDP)."""

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

from tests.support.trainer_launch import TINY, launch_gang, run_trainer
from trainer.data import MultiDatasetDM
from trainer.data.config import CONFIG_DIR, load_dataset_config
from trainer.plots import plot_run, read_steps

TINY_YAML = CONFIG_DIR / "synthetic_tiny.yaml"


def tiny_with(tmp_path: Path, **sections) -> Path:
    parent = yaml.safe_load(TINY_YAML.read_text())
    parent.update(session_dir=str(CONFIG_DIR / "synthetic_tiny"), **sections)
    path = tmp_path / "tiny_aug.yaml"
    path.write_text(yaml.safe_dump(parent))
    return path


def test_augmentation_applies_to_training_batches_only(tmp_path, tiny_data):
    aug = {"temporal_jitter": 1, "brightness": 0.3, "contrast": 0.3}
    config = load_dataset_config(tiny_with(tmp_path, augmentation=aug), data_root=tiny_data)
    dm = MultiDatasetDM(config, batch_size=16)
    dm.setup("fit")
    loaded = next(iter(dm.train_dataloader()))
    batch = dm.device_batch(loaded)  # decoded, not augmented
    dm.trainer = SimpleNamespace(training=False, global_rank=0, world_size=1)
    plain = dm.on_after_batch_transfer(loaded, 0)  # validation / sanity check
    for got, want in zip(plain, batch, strict=True):
        assert torch.equal(got["stim"], want["stim"])
    dm.trainer.training = True
    augmented = dm.on_after_batch_transfer(loaded, 0)
    for raw, aug_group in zip(batch, augmented, strict=True):
        assert not torch.equal(raw["stim"], aug_group["stim"])
        assert torch.equal(raw["robs"], aug_group["robs"])


def test_augmentation_is_off_by_default(tiny_data):
    dm = MultiDatasetDM(load_dataset_config("synthetic_tiny", data_root=tiny_data), 16)
    dm.setup("fit")
    loaded = next(iter(dm.train_dataloader()))
    dm.trainer = SimpleNamespace(training=True, global_rank=0, world_size=1)
    for got, want in zip(
        dm.on_after_batch_transfer(loaded, 0), dm.device_batch(loaded), strict=True
    ):
        assert torch.equal(got["stim"], want["stim"])


def _train(tmp_path, tiny_data, run: str, *extra: str) -> Path:
    argv = [
        *TINY,
        "--run_dir",
        str(tmp_path / run),
        "--data_root",
        str(tiny_data),
        "--max_epochs",
        "1",
        "--steps_per_epoch",
        "3",
        "--batch_size",
        "32",
        "--limit_val_batches",
        "2",
        "--resume",
        "never",
        *extra,
    ]
    assert run_trainer(argv) == 0
    return tmp_path / run / "checkpoints" / "last.ckpt"


def _state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=False)["state_dict"]


@pytest.mark.slow
def test_pretrained_frozen_core_run_keeps_source_core_bit_identical(tmp_path, tiny_data, capsys):
    source = _state(_train(tmp_path, tiny_data, "pretrain"))
    capsys.readouterr()
    ckpt = tmp_path / "pretrain" / "checkpoints" / "last.ckpt"
    tuned = _state(
        _train(
            tmp_path, tiny_data, "frozen", "--pretrained_checkpoint", str(ckpt), "--freeze_vision"
        )
    )
    out = capsys.readouterr().out
    stages = ("frontend.", "convnet.", "modulator.", "recurrent.")
    core_keys = [k for k in source if k.startswith(tuple(f"model.{s}" for s in stages))]
    loaded = int(re.search(r"loaded (\d+) tensors", out).group(1))
    assert loaded == len(core_keys) > 0
    for key in core_keys:
        assert torch.equal(tuned[key], source[key]), key
    readouts = [k for k in source if k.startswith("model.readouts.")]
    assert any(not torch.equal(tuned[k], source[k]) for k in readouts)
    plots = plot_run(tmp_path / "frozen")  # a real checkpoint: curves + true vs learned RFs
    assert sorted(p.name for p in plots) == [
        "curves.png", "rf_tiny_back.png", "rf_tiny_gabor.png", "steps.png"
    ]  # fmt: skip
    losses = [r for r in read_steps(tmp_path / "frozen") if "train_loss_step" in r]
    assert len(losses) >= 3  # per-step points within the run, not one per epoch


@pytest.mark.slow
def test_regularizers_from_the_model_yaml_act_in_training(tmp_path, tiny_data):
    config = yaml.safe_load((Path("trainer/configs/models/res_small.yaml")).read_text())
    config["regularization"] = [
        {
            "name": "std_floor",
            "type": "proximal_clamp_min",
            "lambda": 0.5,
            "apply_to": ["readouts/std"],
        },
        {"name": "sparse", "type": "l1", "lambda": 1e-3, "apply_to": ["readouts/features"]},
    ]
    model_yaml = tmp_path / "reg.yaml"
    model_yaml.write_text(yaml.safe_dump(config))
    state = _state(_train(tmp_path, tiny_data, "reg", "--model_config", str(model_yaml)))
    stds = [v for k, v in state.items() if k.startswith("model.readouts.") and "std" in k]
    assert stds and all(bool((v >= 0.5).all()) for v in stds)


def test_unmatched_regularizer_pattern_exits_2(tmp_path, tiny_data, capsys):
    config = yaml.safe_load((Path("trainer/configs/models/res_small.yaml")).read_text())
    config["regularization"] = [{"type": "l1", "lambda": 1.0, "apply_to": ["readouts/nope"]}]
    model_yaml = tmp_path / "bad.yaml"
    model_yaml.write_text(yaml.safe_dump(config))
    argv = [
        *TINY,
        "--model_config",
        str(model_yaml),
        "--run_dir",
        str(tmp_path / "bad"),
        "--data_root",
        str(tiny_data),
    ]
    assert run_trainer(argv) == 2
    assert "regularization[0].apply_to" in capsys.readouterr().err


CURRICULUM = re.compile(
    r"COREJOB_CURRICULUM rank=(\d) epoch=(\d+) steps=(\d+)\.\.(\d+) n_steps=(\d+) "
    r"strength=\S+ mean_sampled=(\S+) mean_expected=(\S+) mean_uniform=(\S+)"
)


@pytest.mark.slow
def test_curriculum_under_two_process_ddp(tmp_path, tiny_data):
    steps = 8
    args = [
        *TINY,
        "--run_dir",
        "run",
        "--data_root",
        str(tiny_data),
        "--batch_size",
        "64",
        "--max_epochs",
        "3",
        "--steps_per_epoch",
        str(steps),
        "--limit_val_batches",
        "1",
        "--enable_curriculum",
        "--curriculum_warmup_steps",
        str(2 * steps),
    ]
    procs = launch_gang(args, 2, tmp_path)
    codes = [p.wait(timeout=240) for p in procs]
    assert codes == [0, 0], procs[0].output + procs[1].output
    for rank, proc in enumerate(procs):
        rows = [CURRICULUM.search(line) for line in proc.lines]
        rows = [tuple(float(x) for x in m.groups()) for m in rows if m]
        assert [int(r[1]) for r in rows] == [0, 1, 2] and all(int(r[0]) == rank for r in rows)
        for epoch, (_, _, first, last, n, sampled, expected, _) in enumerate(rows):
            # The step reached this rank's own sampler on every batch, increasing.
            assert (first, last, n) == (epoch * steps, epoch * steps + steps - 1, steps)
            assert sampled == pytest.approx(expected, abs=0.06)
        assert rows[0][5] > rows[0][7] + 0.05  # epoch 0: high contrast favoured
        assert rows[2][5] == pytest.approx(rows[2][7], abs=0.05)  # after warmup: uniform
