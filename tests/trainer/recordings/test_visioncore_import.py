"""``corejob-train import-visioncore``: VisionCore DictDataset files in, raw sessions out.

The ``.dset`` files are built here the way VisionCore's ``DictDataset.save`` writes them
(``torch.save({"covariates": {name: tensor}, "metadata": {...}})``), from a synthetic
session, so the converted arrays can be compared with what went in.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from trainer.cli import run_cli
from trainer.configs.dataset_schema.synthetic import resolve_params
from trainer.contract import exit_codes
from trainer.recordings.store import open_raw_session
from trainer.synthetic import RawSessionSpec, simulate_raw_session

REPO = Path(__file__).resolve().parents[3]


class LabSession:
    """Stands for the private session object VisionCore keeps in some metadata."""

    def __init__(self, name: str) -> None:
        self.name = name


@pytest.fixture(scope="module")
def recorded():
    params = resolve_params({"preset": "tiny", "n_frames": 200, "trial_frames": [40, 60]})
    spec = RawSessionSpec("rec", 5, 3, ("backimage", "gratings"), 4, params)
    return simulate_raw_session(spec)


def save_dset(file: Path, covariates: dict, metadata: dict | None = None, legacy=False) -> None:
    """What VisionCore's ``DictDataset.save`` writes (tensors; numpy metadata allowed).

    ``legacy``: torch's pre-1.6 file format (cannot be memory-mapped: read into memory).
    """
    file.parent.mkdir(parents=True, exist_ok=True)
    tensors = {key: torch.from_numpy(np.array(value)) for key, value in covariates.items()}
    data = {"covariates": tensors, "metadata": metadata or {}}
    torch.save(data, file, _use_new_zipfile_serialization=not legacy)


def visioncore_covariates(recorded, stim_type: str) -> dict[str, np.ndarray]:
    """A recording as VisionCore's files hold it: dpi_valid as float, as its filters read it."""
    covariates = dict(recorded.recordings[stim_type].covariates)
    covariates["dpi_valid"] = covariates["dpi_valid"].astype(np.float32)
    return covariates


def make_src(root: Path, recorded) -> Path:
    """SRC/sess_a (two types, units.npz), SRC/sess_b (one type, no unit data)."""
    src = root / "src"
    for stim_type in ("backimage", "gratings"):
        metadata = {"name": stim_type, "roi": np.array([[-20, 20], [-20, 20]]), "ppd": 37.5}
        save_dset(src / "sess_a/datasets" / f"{stim_type}.dset",
                  visioncore_covariates(recorded, stim_type), metadata)  # fmt: skip
    np.savez(
        src / "sess_a/units.npz",
        cids=recorded.cids,
        missing_pct_times=recorded.missing_pct.times,
        missing_pct=recorded.missing_pct.pct,
    )
    covariates = visioncore_covariates(recorded, "gratings")
    save_dset(src / "sess_b/datasets/gratings.dset", covariates, legacy=True)
    return src


def trainer_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "trainer", *args], capture_output=True, text=True, env=env
    )


def test_the_cli_converts_sessions_bit_for_bit(tmp_path, recorded, capsys):
    src, dst = make_src(tmp_path, recorded), tmp_path / "dst"
    done = trainer_cli("import-visioncore", str(src), str(dst))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"sess_a -> {dst / 'sess_a'}: backimage, gratings",
        f"sess_b -> {dst / 'sess_b'}: gratings",
    ]
    session = open_raw_session(dst / "sess_a")
    np.testing.assert_array_equal(session.cids, recorded.cids)
    assert session.missing_pct.pct.tobytes() == recorded.missing_pct.pct.tobytes()
    for stim_type, want in recorded.recordings.items():
        got = session.recording(stim_type)
        assert got.source_rate == 240.0
        for key, array in want.covariates.items():
            assert got.covariates[key].dtype == array.dtype, key
            assert got.covariates[key].tobytes() == array.tobytes(), key
        assert got.meta["ppd"] == 37.5 and got.meta["roi"] == [[-20, 20], [-20, 20]]
    manifest = json.loads((dst / "sess_a/session.json").read_text())
    assert (
        "gratings: dpi_valid: float32 -> bool (value > 0, as VisionCore)"
        in (manifest["source"]["conversions"])
    )
    only = open_raw_session(dst / "sess_b")
    np.testing.assert_array_equal(only.cids, np.arange(5))  # robs columns: VisionCore's cids
    assert only.missing_pct is None and list(only.recordings) == ["gratings"]
    for key, array in recorded.recordings["gratings"].covariates.items():  # legacy format
        assert only.recording("gratings").covariates[key].tobytes() == array.tobytes(), key
    assert run_cli(["import-visioncore", str(src), str(dst)]) == exit_codes.DATA_ERROR
    assert capsys.readouterr().err == (
        f"corejob-train: error: {dst / 'sess_a'}: holds a session already; pass --replace\n"
    )
    assert run_cli(["import-visioncore", str(src), str(dst), "--replace"]) == 0


def test_dry_run_lists_sessions_types_shapes_and_bytes_and_writes_nothing(
    tmp_path, recorded, capsys
):
    src, dst = make_src(tmp_path, recorded), tmp_path / "dst"
    code = run_cli(["import-visioncore", str(src), str(dst), "--dry-run", "--types", "gratings"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0 and not dst.exists()
    assert out[0] == f"sess_a -> {dst / 'sess_a'} (5 units)"
    gratings = recorded.recordings["gratings"].covariates
    size = sum(a.nbytes for a in gratings.values())
    assert out[1].startswith(f"  gratings: 400 bins at 240 Hz, {size / 1000:.1f} kB: stim")
    assert "robs (400, 5) float32" in out[1] and "dpi_valid (400,) bool" in out[1]
    assert f"  cids: 5 units from {src / 'sess_a/units.npz'}" in out
    assert out[-1] == "dry run: 2 session(s) checked, nothing written"


def _drop_eyepos(covariates: dict) -> str:
    del covariates["eyepos"]
    return "covariates.eyepos: missing"


def _float_stim(covariates: dict) -> str:
    covariates["stim"] = covariates["stim"].astype(np.float32)
    return "covariates.stim: dtype float32; expected uint8 pixels (T, H, W)"


def _short_robs(covariates: dict) -> str:
    covariates["robs"] = covariates["robs"][:-3]
    return "covariates.robs: 397 bins, other covariates have 400"


def _split_trial(covariates: dict) -> str:
    covariates["trial_inds"] = covariates["trial_inds"].copy()
    covariates["trial_inds"][-10:] = covariates["trial_inds"][0]
    return "covariates.trial_inds: a trial appears in two separate runs"


def _wrong_rate(covariates: dict) -> str:
    covariates["t_bins"] = covariates["t_bins"] * 2.0
    return "covariates.t_bins: median step 0.00833333 s (120 Hz), but the source rate is 240 Hz"


@pytest.mark.parametrize(
    "damage", [_drop_eyepos, _float_stim, _short_robs, _split_trial, _wrong_rate]
)
def test_a_bad_recording_is_one_line_naming_file_and_key(tmp_path, recorded, damage, capsys):
    src, dst = make_src(tmp_path, recorded), tmp_path / "dst"
    covariates = visioncore_covariates(recorded, "gratings")
    problem = damage(covariates)
    file = src / "sess_b/datasets/gratings.dset"
    save_dset(file, covariates)
    code = run_cli(["import-visioncore", str(src), str(dst)])
    err = capsys.readouterr().err
    assert code == exit_codes.DATA_ERROR and err.count("\n") == 1
    assert err.startswith(f"corejob-train: error: {file}: {problem}"), err
    assert not dst.exists()  # every session is checked before the first is written


def test_a_truncated_file_and_bad_unit_data_are_named(tmp_path, recorded, capsys):
    src, dst = make_src(tmp_path, recorded), tmp_path / "dst"
    file = src / "sess_a/datasets/backimage.dset"
    with open(file, "r+b") as handle:
        handle.truncate(file.stat().st_size // 2)
    assert run_cli(["import-visioncore", str(src), str(dst)]) == exit_codes.DATA_ERROR
    err = capsys.readouterr().err
    assert err.startswith(f"corejob-train: error: {file}: not a readable torch.save file")
    assert err.count("\n") == 1 and not dst.exists()
    np.savez(src / "sess_b/units.npz", cids=np.arange(4))
    assert run_cli(["import-visioncore", str(src), str(dst), "--sessions", "sess_b"]) == 3
    err = capsys.readouterr().err
    assert err == f"corejob-train: error: {src}/sess_b/units.npz: cids: 4 ids, robs has 5 columns\n"


def test_a_file_that_needs_unsafe_unpickling_needs_the_flag(tmp_path, recorded, capsys):
    src, dst = make_src(tmp_path, recorded), tmp_path / "dst"
    file = src / "sess_b/datasets/gratings.dset"
    save_dset(file, visioncore_covariates(recorded, "gratings"), {"sess": LabSession("b")})
    assert run_cli(["import-visioncore", str(src), str(dst)]) == exit_codes.DATA_ERROR
    err = capsys.readouterr().err
    assert err.startswith(f"corejob-train: error: {file}: needs arbitrary unpickling to load")
    assert f"{__name__}.LabSession" in err and err.rstrip().endswith("--allow-unsafe-pickle")
    assert not (dst / "sess_b").exists()
    argv = ["import-visioncore", str(src), str(dst), "--allow-unsafe-pickle"]
    assert run_cli(argv) == 0
    meta = open_raw_session(dst / "sess_b").recording("gratings").meta
    assert meta["dropped_metadata"] == ["sess"]  # not JSON: left out, and said so


def test_unsafe_loading_of_a_class_that_is_not_installed_names_it(
    tmp_path, recorded, capsys, monkeypatch
):
    src, dst = make_src(tmp_path, recorded), tmp_path / "dst"
    (tmp_path / "lab_package.py").write_text("class Session:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import lab_package  # the lab's private package, present where the file was saved

    file = src / "sess_b/datasets/gratings.dset"
    save_dset(file, visioncore_covariates(recorded, "gratings"), {"sess": lab_package.Session()})
    monkeypatch.delitem(sys.modules, "lab_package")
    (tmp_path / "lab_package.py").unlink()  # and absent where it is imported
    argv = ["import-visioncore", str(src), str(dst), "--allow-unsafe-pickle"]
    assert run_cli(argv) == exit_codes.DATA_ERROR
    err = capsys.readouterr().err
    assert err.startswith(f"corejob-train: error: {file}: unpickling it needs code this")
    assert "No module named 'lab_package'" in err and err.count("\n") == 1


def test_help_lists_the_subcommand_and_shows_its_defaults(capsys):
    for argv in (["--help"], ["import-visioncore", "--help"]):
        with pytest.raises(SystemExit) as done:
            run_cli(argv)
        assert done.value.code == 0
    top, sub = capsys.readouterr().out.split("usage: corejob-train import-visioncore")
    assert "import-visioncore" in top and "convert VisionCore DictDataset" in " ".join(top.split())
    text = " ".join(sub.split())
    assert "SRC DST" in text and "checked against t_bins) (default: 240.0)" in text
    assert "(default: None)" not in text and "(default: False)" not in text
