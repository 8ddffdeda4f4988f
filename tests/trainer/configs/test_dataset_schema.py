"""The dataset-config schema (VisionCore's dialect): what loads, and the one line for what not.

Torch-free (the controller validates with it before submit); VisionCore's own configs,
copied with their licence, load unchanged.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from trainer.configs.dataset_schema import PARENT_KEYS, SESSION_FILE_KEYS, load_dataset_files
from trainer.contract.errors import ConfigError

VISIONCORE = Path(__file__).parents[1] / "data" / "visioncore_dataset_configs"

PARENT = {
    "description": "two sessions",
    "types": ["backimage", "gaborium"],
    "sessions": ["s1", "s2"],
    "sampling": {"source_rate": 240, "target_rate": 120},
    "keys_lags": {"robs": 0, "stim": [0, 1, 2], "behavior": 0, "dfs": 0},
    "transforms": {
        "stim": {"source": "stim", "ops": [], "expose_as": "stim"},
        "eye_pos": {"source": "eyepos", "ops": [], "expose_as": "behavior", "concatenate": True},
    },
    "datafilters": {"dfs": {"ops": [], "expose_as": "dfs"}},
    "train_val_split": 0.8,
    "seed": 5,
}


def write_config(tmp_path: Path, parent: dict, sessions: dict[str, dict] | None = None) -> Path:
    path = tmp_path / "ds.yaml"
    path.write_text(yaml.safe_dump(parent))
    (tmp_path / "ds").mkdir(exist_ok=True)
    for name in parent.get("sessions", []):
        own = (sessions or {}).get(name, {"session": name, "cids": [0, 2, 3]})
        (tmp_path / "ds" / f"{name}.yaml").write_text(yaml.safe_dump(own))
    return path


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_dataset_files(str(path))
    return str(caught.value)


def test_a_config_loads_in_canonical_form(tmp_path: Path) -> None:
    files = load_dataset_files(str(write_config(tmp_path, PARENT)))
    assert [s.name for s in files.sessions] == ["s1", "s2"]
    fields = files.sessions[0].fields
    assert fields["cids"] == [0, 2, 3] and fields["seed"] == 5 and fields["lab"] == "yates"
    assert fields["sampling"] == {"source_rate": 240.0, "target_rate": 120.0}
    assert fields["keys_lags"] == {"robs": 0, "stim": [0, 1, 2], "behavior": 0, "dfs": 0}
    assert fields["transforms"]["stim"] == {
        "source": "stim", "ops": [], "expose_as": "stim", "concatenate": False
    }  # fmt: skip


def test_a_session_file_overrides_the_parent_key_by_key(tmp_path: Path) -> None:
    own = {"s1": {"sampling": {"target_rate": 240}, "types": ["gaborium"], "lab": "rowley"}}
    files = load_dataset_files(str(write_config(tmp_path, PARENT, own)))
    first, second = (s.fields for s in files.sessions)
    assert first["sampling"] == {"source_rate": 240.0, "target_rate": 240.0}
    assert first["types"] == ["gaborium"] and first["lab"] == "rowley" and "cids" not in first
    assert second["sampling"]["target_rate"] == 120.0 and second["types"] == PARENT["types"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"n_lags": 3}, "ds.yaml: n_lags: unknown field; allowed: ["),
        ({"sampling": {"source_rate": 240, "target_rate": 100}},
         "ds.yaml: sampling.target_rate: 100 Hz: source_rate / target_rate = 2.4 must be a"),
        ({"sampling": {"source_rate": 240}}, "ds.yaml: sampling.target_rate: required"),
        ({"keys_lags": {"robs": 0, "stim": [0, -1], "dfs": 0}},
         "ds.yaml: keys_lags.stim: must be an integer >= 0 or a non-empty list"),
        ({"keys_lags": {"robs": 0, "stim": [0]}}, "ds.yaml: keys_lags.dfs: required"),
        ({"keys_lags": {"robs": 0, "dfs": 0, "history": [1, 2]}},
         "ds.yaml: keys_lags.history: nothing exposes 'history': add a transform"),
        ({"transforms": {"stim": {"source": "stim", "op": []}}},
         "ds.yaml: transforms.stim.op: unknown field; allowed: ['concatenate', 'expose_as',"),
        ({"transforms": {"a": {"source": "eyepos", "expose_as": "behavior"},
                         "b": {"source": "eyepos", "expose_as": "behavior"}}},
         "ds.yaml: transforms: several transforms expose 'behavior': set concatenate: true"),
        ({"datafilters": {"valid": {"ops": [], "expose_as": "valid"}}},
         "ds.yaml: datafilters: no datafilter has expose_as: dfs"),
        ({"train_val_split": 1.0}, "ds.yaml: train_val_split: must be a fraction in (0, 1)"),
        ({"types": []}, "ds.yaml: types: must be a non-empty list of type names"),
        ({"sessions": []}, "ds.yaml: sessions: required: a non-empty list of session names"),
    ],
)  # fmt: skip
def test_a_bad_parent_field_is_one_line_naming_file_and_key(
    tmp_path: Path, change: dict, expected: str
) -> None:
    path = write_config(tmp_path, {**PARENT, **change})
    message = error_of(path)
    assert message.startswith(f"{tmp_path}/{expected}"), message
    assert "\n" not in message


def test_a_bad_session_file_names_that_file(tmp_path: Path) -> None:
    for own, expected in (
        ({"stim_type": "backimage"}, "stim_type: unknown field; allowed: ["),
        ({"session": "other"}, "session: is 'other' but the file is for 's1'"),
        ({"cids": [1, 1]}, "cids: must be a non-empty list of distinct unit ids"),
        ({"qcmissing": "all"}, "qcmissing: must be a list of unit ids"),
    ):
        path = write_config(tmp_path, PARENT, {"s1": own})
        assert error_of(path).startswith(f"{tmp_path}/ds/s1.yaml: {expected}")
    path = write_config(tmp_path, PARENT)
    (tmp_path / "ds" / "s2.yaml").unlink()
    assert error_of(path).startswith(f"{path}: sessions: session file {tmp_path}/ds/s2.yaml not")


def test_the_allowed_keys_cover_visioncores_session_files() -> None:
    for file in (VISIONCORE / "sessions").glob("*.yaml"):
        assert set(yaml.safe_load(file.read_text())) <= set(SESSION_FILE_KEYS), file
    assert {"types", "session_dir", "sessions", "sampling", "keys_lags", "transforms"} <= set(
        PARENT_KEYS
    )


def test_max_datasets_keeps_the_first_sessions(tmp_path: Path) -> None:
    files = load_dataset_files(str(write_config(tmp_path, PARENT)), max_datasets=1)
    assert [s.name for s in files.sessions] == ["s1"]
    with pytest.raises(ConfigError, match="--max_datasets: max_datasets: must be >= 1"):
        load_dataset_files(str(write_config(tmp_path, PARENT)), max_datasets=0)


def test_the_schema_imports_no_torch() -> None:
    code = "import sys, trainer.configs.dataset_schema; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("path", sorted(VISIONCORE.glob("*.yaml")), ids=lambda p: p.stem)
def test_visioncores_dataset_configs_load_unchanged(path: Path) -> None:
    files = load_dataset_files(str(path))
    first = files.sessions[0].fields
    assert first["cids"] == yaml.safe_load(files.sessions[0].file.read_text())["cids"]
    assert first["sampling"]["source_rate"] == 240.0
    stim = first["keys_lags"]["stim"]
    assert stim == 0 or stim[0] == 0  # VisionCore's order: the current bin first


def test_the_history_config_exposes_behaviour_and_history() -> None:
    files = load_dataset_files(str(VISIONCORE / "multi_basic_120_backimage_history.yaml"))
    assert len(files.sessions) == 20
    fields = files.sessions[0].fields
    assert fields["keys_lags"]["history"] == [1, 2, 3, 4, 5]
    assert len(fields["keys_lags"]["stim"]) == 33
    behaviour = [n for n, t in fields["transforms"].items() if t["expose_as"] == "behavior"]
    assert behaviour == ["eye_vel", "eye_pos"]
    assert [list(op) for op in fields["transforms"]["eye_vel"]["ops"]] == [
        ["diff"], ["maxnorm"], ["symlog"], ["temporal_basis"], ["splitrelu"]
    ]  # fmt: skip


def test_an_op_typo_fails_at_load_naming_file_and_op(tmp_path: Path) -> None:
    bad = {"eye": {"source": "eyepos", "ops": [{"maxnrom": {}}], "expose_as": "behavior"}}
    path = write_config(tmp_path, {**PARENT, "transforms": bad})
    message = error_of(path)
    assert message.startswith(f"{path}: transforms.eye.ops[0]"), message
    assert "maxnrom" in message and "maxnorm" in message  # names the op and the allowed ones
