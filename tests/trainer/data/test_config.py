"""Dataset configs as the trainer loads them: shipped configs, synthetic blocks, sessions.

The dialect itself (keys, sections, merge, one-line errors) is tested with the schema in
``tests/trainer/configs/test_dataset_schema.py``; here is what the trainer adds.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from trainer.contract.errors import ConfigError, DataError
from trainer.data.config import DatasetConfig, load_dataset_config
from trainer.data.sessions import raw_session_folders

PARENT = {
    "types": ["backimage"],
    "sessions": ["s1", "s2"],
    "sampling": {"source_rate": 240, "target_rate": 120},
    "keys_lags": {"robs": 0, "stim": [0, 1, 2, 3], "dfs": 0},
    "train_val_split": 0.75,
    "seed": 3,
    "synthetic": {"preset": "tiny", "n_frames": 900, "n_units": 4},
}


def write_config(tmp_path: Path, parent: dict, own: dict[str, dict] | None = None) -> Path:
    (tmp_path / "ds").mkdir(exist_ok=True)
    for name in parent["sessions"]:
        data = (own or {}).get(name, {"session": name})
        (tmp_path / "ds" / f"{name}.yaml").write_text(yaml.safe_dump(data))
    path = tmp_path / "ds.yaml"
    path.write_text(yaml.safe_dump(parent))
    return path


def test_shipped_configs_keep_their_meaning() -> None:
    """The configs moved to VisionCore's dialect: 240 Hz recordings sampled to 120 Hz, the
    same sessions, unit counts, stimulus types, lags and image sizes as before."""
    for config in map(load_dataset_config, ["synthetic_tiny", "synthetic_mixed",
                                            "synthetic_backimage", "synthetic_gaborium",
                                            "synthetic_realistic"]):  # fmt: skip
        for s in config.sessions:
            assert s.fields["sampling"] == {"source_rate": 240.0, "target_rate": 120.0}
            spec = config.synthetic_spec(s)
            assert spec.source_rate == 240.0 and spec.frame_rate_hz == 120.0
            assert spec.n_lags == len(s.fields["keys_lags"]["stim"])
            assert s.fields["keys_lags"]["stim"][0] == 0
    mixed = load_dataset_config("synthetic_mixed")
    units = [mixed.synthetic_spec(s).n_units for s in mixed.sessions]
    assert units == [40, 28, 20, 6]
    assert [s.fields["types"] for s in mixed.sessions] == [
        ["backimage"], ["gaborium"], ["gratings"], ["backimage"]
    ]  # fmt: skip
    tiny = load_dataset_config("synthetic_tiny")
    assert [tiny.synthetic_spec(s).params["image_size"] for s in tiny.sessions] == [16, 16]
    real = load_dataset_config("synthetic_realistic")
    specs = [real.synthetic_spec(s) for s in real.sessions]
    assert len(specs) == 24 and {s.params["image_size"] for s in specs} == {64}
    assert min(s.n_units for s in specs) == 20 and max(s.n_units for s in specs) == 180
    assert len({s.seed for s in specs}) == 24 and specs[0].n_lags == 33
    assert real.sessions[0].fields["transforms"]["eye_vel"]["ops"][3]["temporal_basis"][
        "num_cosine_funcs"
    ] == 10  # 2 x 10 x 2 + 2 = VisionCore's 42 behaviour columns  # fmt: skip


def test_a_synthetic_block_is_checked_at_load(tmp_path: Path) -> None:
    own = {"s2": {"synthetic": {"n_frmes": 10}}}
    with pytest.raises(ConfigError) as caught:
        load_dataset_config(str(write_config(tmp_path, PARENT, own)))
    assert str(caught.value).startswith(f"{tmp_path}/ds/s2.yaml: synthetic.n_frmes: unknown")
    no_units = {**PARENT, "synthetic": {"preset": "tiny"}}
    with pytest.raises(ConfigError, match=r"synthetic\.n_units: must be a positive integer"):
        load_dataset_config(str(write_config(tmp_path, no_units)))
    other_types = {**PARENT, "types": ["fixrsvp"]}
    with pytest.raises(ConfigError, match=r"synthetic\.types: \['fixrsvp'\]: distinct names"):
        load_dataset_config(str(write_config(tmp_path, other_types)))


def test_seeds_differ_per_session_and_overrides_win(tmp_path: Path) -> None:
    own = {"s2": {"synthetic": {"seed": 11, "n_units": 6}}}
    config = load_dataset_config(str(write_config(tmp_path, PARENT, own)), data_root=tmp_path)
    first, second = (config.synthetic_spec(s) for s in config.sessions)
    assert (second.seed, second.n_units, first.n_units) == (11, 6, 4)
    assert first.seed not in (11, 3) and first.params["n_frames"] == 900
    folders = {config.raw_session_dir(s) for s in config.sessions}
    assert len(folders) == 2 and all(f.parent == tmp_path / "synthetic_raw" for f in folders)


def test_round_trip_through_a_checkpoints_dict(tmp_path: Path) -> None:
    config = load_dataset_config(str(write_config(tmp_path, PARENT)), data_root=tmp_path)
    again = DatasetConfig.from_dict(config.to_dict())
    assert again == config
    moved = DatasetConfig.from_dict(config.to_dict(), data_root=tmp_path / "elsewhere")
    assert moved.data_root == tmp_path / "elsewhere" and moved.sessions == config.sessions
    old = {"name": "x", "sessions": [{"name": "s1", "stim_type": "backimage"}], "data_root": "."}
    with pytest.raises(ConfigError, match="before VisionCore's dataset dialect"):
        DatasetConfig.from_dict(old)


def test_a_recorded_session_not_yet_imported_names_path_and_command(tmp_path: Path) -> None:
    recorded = {k: v for k, v in PARENT.items() if k != "synthetic"}
    config = load_dataset_config(str(write_config(tmp_path, recorded)), data_root=tmp_path)
    with pytest.raises(DataError) as caught:
        raw_session_folders(config)
    assert str(caught.value) == (
        f"{tmp_path}/s1: no raw session 's1' here (named by {tmp_path}/ds/s1.yaml); convert "
        f"VisionCore's files with: corejob-train import-visioncore SRC {tmp_path}"
    )


def test_unknown_name_lists_available_and_max_datasets_truncates() -> None:
    with pytest.raises(ConfigError, match=r"unknown dataset config; available: .*synthetic_tiny"):
        load_dataset_config("no_such_dataset")
    assert len(load_dataset_config("synthetic_mixed", max_datasets=2).sessions) == 2
