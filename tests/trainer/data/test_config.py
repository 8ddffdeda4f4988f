"""Dataset configs: shipped configs load, bad fields fail as one line naming file and key."""

from __future__ import annotations

import pytest
import yaml

from trainer.contract.errors import ConfigError
from trainer.data.config import DatasetConfig, deep_merge, load_dataset_config


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def parent(tmp_path):
    """A valid two-session config in a temp folder; tests break one thing each."""
    write(tmp_path / "ds" / "s1.yaml", {"session": "s1", "n_units": 5})
    write(tmp_path / "ds" / "s2.yaml", {"session": "s2", "stim_type": "gaborium", "n_units": 3})
    data = {
        "types": ["backimage", "gaborium"],
        "sessions": ["s1", "s2"],
        "n_lags": 4,
        "behavior_dim": 6,
        "train_val_split": 0.75,
        "seed": 3,
        "stim_type": "backimage",
        "synthetic": {"preset": "tiny", "n_frames": 900, "rf_jitter": 0.5},
    }
    return tmp_path / "ds.yaml", data


def test_shipped_configs_have_the_promised_shapes():
    mixed = load_dataset_config("synthetic_mixed")
    units = [s.n_units for s in mixed.sessions]
    assert len(units) >= 3 and len(set(units)) == len(units) and min(units) < 10
    assert {s.stim_type for s in mixed.sessions} == {"backimage", "gaborium", "gratings"}
    for name, stim in [("synthetic_backimage", "backimage"), ("synthetic_gaborium", "gaborium")]:
        cfg = load_dataset_config(name)
        assert len(cfg.sessions) >= 3 and {s.stim_type for s in cfg.sessions} == {stim}
        assert len({s.n_units for s in cfg.sessions}) == len(cfg.sessions)
    tiny = load_dataset_config("synthetic_tiny")
    assert len(tiny.sessions) == 2 and all(s.synthetic["image_size"] == 16 for s in tiny.sessions)
    real = load_dataset_config("synthetic_realistic")
    assert len(real.sessions) >= 20 and (real.n_lags, real.behavior_dim) == (33, 42)
    assert real.frame_rate_hz == 120
    assert min(s.n_units for s in real.sessions) == 20
    assert max(s.n_units for s in real.sessions) == 180
    assert len({s.seed for s in real.sessions}) == len(real.sessions)


def test_session_file_is_deep_merged_over_parent(parent):
    path, data = parent
    write(
        path.parent / "ds" / "s2.yaml",
        {"stim_type": "gaborium", "n_units": 3, "synthetic": {"n_frames": 1200}},
    )
    write(path, data)
    cfg = load_dataset_config(path, data_root=path.parent / "data")
    s1, s2 = cfg.sessions
    assert (s1.stim_type, s2.stim_type) == ("backimage", "gaborium")
    assert s1.synthetic["n_frames"] == 900 and s2.synthetic["n_frames"] == 1200
    assert s2.synthetic["rf_jitter"] == 0.5  # sibling key of the override survives
    assert s2.synthetic["image_size"] == 16  # from the tiny preset
    assert s1.seed != s2.seed
    assert cfg.session_dir(s1) != cfg.session_dir(s2)


def test_deep_merge_recurses_and_does_not_mutate():
    base = {"a": {"b": 1, "c": {"d": 2}}, "e": [1]}
    merged = deep_merge(base, {"a": {"c": {"x": 3}}, "e": [2]})
    assert merged == {"a": {"b": 1, "c": {"d": 2, "x": 3}}, "e": [2]}
    assert base == {"a": {"b": 1, "c": {"d": 2}}, "e": [1]}


def test_round_trip_through_dict(parent, tmp_path):
    path, data = parent
    write(path, data)
    cfg = load_dataset_config(path, data_root=tmp_path / "data")
    again = DatasetConfig.from_dict(cfg.to_dict())
    assert again.to_dict() == cfg.to_dict()
    assert [again.session_dir(s) for s in again.sessions] == [
        cfg.session_dir(s) for s in cfg.sessions
    ]


@pytest.mark.parametrize(
    ("change", "key", "hint"),
    [
        (lambda d: d.update(lags=3), "lags", "allowed"),
        (lambda d: d.update(types=["backimage", "movie"]), "types", "gratings"),
        (lambda d: d.update(train_val_split=1.5), "train_val_split", "(0, 1)"),
        (lambda d: d.pop("n_lags"), "n_lags", "required"),
        (lambda d: d["synthetic"].update(n_frame=3), "synthetic.n_frame", "allowed"),
        (lambda d: d["synthetic"].update(preset="huge"), "synthetic.preset", "realistic"),
        (lambda d: d["synthetic"].update(contrast=[0.9, 0.1]), "synthetic.contrast", "low"),
    ],
)
def test_bad_parent_fields_name_file_and_key(parent, change, key, hint):
    path, data = parent
    change(data)
    write(path, data)
    with pytest.raises(ConfigError) as err:
        load_dataset_config(path)
    message = str(err.value)
    assert "\n" not in message and f": {key}:" in message and hint in message
    assert err.value.key == key and "ds" in err.value.source


def test_missing_session_file_names_parent_key_and_file(parent):
    path, data = parent
    data["sessions"].append("s3")
    write(path, data)
    with pytest.raises(ConfigError) as err:
        load_dataset_config(path)
    assert err.value.source == str(path) and err.value.key == "sessions"
    assert "s3.yaml" in str(err.value)


@pytest.mark.parametrize(
    ("session_data", "key"),
    [
        ({"n_units": 2, "colour": "red"}, "colour"),
        ({"n_units": 2, "stim_type": "gratings"}, "stim_type"),
        ({"n_units": 0}, "n_units"),
        ({"session": "other", "n_units": 2}, "session"),
        ({"n_units": 2, "synthetic": {"image_size": 4}}, "synthetic.image_size"),
    ],
)
def test_bad_session_fields_name_session_file(parent, session_data, key):
    path, data = parent
    write(path, data)
    write(path.parent / "ds" / "s1.yaml", session_data)
    with pytest.raises(ConfigError) as err:
        load_dataset_config(path)
    assert err.value.source.endswith("s1.yaml") and err.value.key == key


def test_unknown_name_lists_available_and_max_datasets_truncates():
    with pytest.raises(ConfigError) as err:
        load_dataset_config("synthetic_nope")
    assert "synthetic_tiny" in str(err.value) and "synthetic_mixed" in str(err.value)
    assert len(load_dataset_config("synthetic_mixed", max_datasets=2).sessions) == 2
