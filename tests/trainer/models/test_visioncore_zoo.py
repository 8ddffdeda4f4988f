"""VisionCore's own model configs (copied unchanged, MIT) load and train via corejob-train.

One synthetic dataset shaped like VisionCore's inputs, in VisionCore's dataset dialect:
raw 240 Hz sessions sampled to 120 Hz, 42 behaviour columns from VisionCore's eye-velocity
recipe, spike history at lags 1-5 (the ``_history`` config uses it), 17 stimulus lags (the
fewest that VisionCore's 16-tap temporal frontend plus a time-pooling block accept — the
``da`` config keeps time, so it gets 4); each config trains two steps (batch 2) in this
process (``run_trainer``) and must write its result.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.support.trainer_launch import run_trainer
from trainer.configs.model_schema import load_model_config

CONFIGS = Path(__file__).parent / "visioncore_configs"
NAMES = sorted(p.stem for p in CONFIGS.glob("*.yaml"))
EYE_VELOCITY = [  # VisionCore's multi_basic_120_backimage_history.yaml
    {"diff": {"axis": 0}},
    {"maxnorm": {}},
    {"symlog": {}},
    {"temporal_basis": {"num_delta_funcs": 0, "num_cosine_funcs": 10, "history_bins": 50,
                        "causal": False, "log_spacing": False, "peak_range_ms": [30, 200],
                        "normalize": True}},
    {"splitrelu": {"split_dim": 1, "trainable_gain": False}},
]  # fmt: skip


def dataset(n_lags: int) -> dict:
    return {
        "description": "VisionCore-shaped synthetic data (tests)",
        "types": ["backimage"],
        "sessions": ["vc_back", "vc_gabor"],
        "sampling": {"source_rate": 240, "target_rate": 120},
        "keys_lags": {"robs": 0, "stim": list(range(n_lags)), "behavior": 0,
                      "history": [1, 2, 3, 4, 5], "dfs": 0},
        "transforms": {
            "stim": {"source": "stim", "ops": [{"pixelnorm": {}}, {"unsqueeze": 1}]},
            "history": {"source": "robs", "ops": [{"select_units": {"indices": "cids"}}]},
            "eye_vel": {"source": "eyepos", "ops": EYE_VELOCITY, "expose_as": "behavior",
                        "concatenate": True},
            "eye_pos": {"source": "eyepos", "ops": [], "expose_as": "behavior",
                        "concatenate": True},
        },
        "datafilters": {"dfs": {"ops": [{"valid_nlags": {"n_lags": n_lags - 1}},
                                        {"missing_pct": {"threshold": 45}}]}},
        "train_val_split": 0.8,
        "seed": 3,
        "synthetic": {"preset": "tiny", "n_frames": 400, "image_size": 12},
    }  # fmt: skip


def _generate(root: Path, n_lags: int) -> tuple[Path, Path]:
    config = root / "vc_synthetic.yaml"
    config.write_text(yaml.safe_dump(dataset(n_lags)))
    (root / "vc_synthetic").mkdir()
    for session, stim_type, units in (("vc_back", "backimage", 6), ("vc_gabor", "gaborium", 4)):
        spec = {"session": session, "types": [stim_type], "synthetic": {"n_units": units}}
        (root / "vc_synthetic" / f"{session}.yaml").write_text(yaml.safe_dump(spec))
    data = root / "data"
    generate = ["generate", "--dataset_configs_path", str(config), "--data_root", str(data)]
    assert run_trainer(generate) == 0
    return config, data


@pytest.fixture(scope="module")
def vc_data(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    return {
        "long": _generate(tmp_path_factory.mktemp("vc-long"), 17),
        "short": _generate(tmp_path_factory.mktemp("vc-short"), 4),
    }


def test_all_eleven_visioncore_configs_are_here():
    assert len(NAMES) == 11 and (CONFIGS / "LICENSE").read_text().startswith("MIT License")
    for name in NAMES:
        load_model_config(CONFIGS / f"{name}.yaml")  # the strict schema accepts each file


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", NAMES)
def test_visioncore_config_trains_two_steps(name, vc_data, tmp_path, capsys):
    dataset, data = vc_data["short" if name.startswith("cones") else "long"]
    args = [
        "train", "--model_config", str(CONFIGS / f"{name}.yaml"),
        "--dataset_configs_path", str(dataset), "--data_root", str(data),
        "--run_dir", str(tmp_path / "run"), "--batch_size", "2", "--max_epochs", "1",
        "--steps_per_epoch", "2", "--limit_val_batches", "2", "--num_workers", "0",
        "--lr_scheduler", "none",
    ]  # fmt: skip
    assert run_trainer(args) == 0, capsys.readouterr().out[-3000:]
    result = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert result["global_step"] == 2
    assert result["model"] == name
