"""Damaged sessions: synthetic ones are regenerated (one line says so), others fail by name.

Every case starts from a copy of the shared generated ``synthetic_tiny`` (``tiny_data``)
and damages one file the way volumes do: truncation (a full disk mid-copy), garbage in
``meta.json``, a deleted file, flipped bytes (bit rot, caught by the checksum only).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from trainer.contract import exit_codes
from trainer.contract.errors import DataError
from trainer.data import MultiDatasetDM, load_dataset_config
from trainer.data.session_store import SessionArrays
from trainer.synthetic import generate_dataset
from trainer.synthetic.store import file_digest, read_meta, verify_session


def tiny_config(root: Path, sessions: int = 1):
    return load_dataset_config("synthetic_tiny", data_root=root, max_datasets=sessions)


@pytest.fixture
def session(tmp_path, tiny_data) -> Path:
    """A private copy of the first ``synthetic_tiny`` session under ``tmp_path/data``."""
    config = tiny_config(tmp_path / "data")
    folder = config.session_dir(config.sessions[0])
    shutil.copytree(tiny_data / "synthetic" / folder.name, folder)
    assert verify_session(folder, checksums=True) == []
    return folder


def truncate(file: Path, size: int = 1000) -> None:
    with open(file, "r+b") as handle:
        handle.truncate(size)


def flip_byte(file: Path, offset: int) -> None:
    with open(file, "r+b") as handle:
        handle.seek(offset)
        value = handle.read(1)[0]
        handle.seek(offset)
        handle.write(bytes([value ^ 0xFF]))


def assert_regenerated(folder: Path, recorded: dict) -> None:
    """Every file is back, byte for byte: the checksums recorded at first generation."""
    assert verify_session(folder, checksums=True) == []
    for name, entry in recorded.items():
        assert file_digest(folder / f"{name}.npy") == entry["sha256"], name
    leftovers = [p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}.")]
    assert leftovers in ([], [f".{folder.name}.lock"])  # no temporary or trash folders


DAMAGE = {
    "truncated robs.npy": (lambda f: truncate(f / "robs.npy"), "robs.npy: truncated: 1000 bytes"),
    "corrupt meta.json": (
        lambda f: (f / "meta.json").write_text('{"arrays": {"st'),
        "meta.json: not valid JSON",
    ),
    "deleted dfs.npy": (lambda f: (f / "dfs.npy").unlink(), "dfs.npy: missing"),
    "garbage stim.npy header": (
        lambda f: flip_byte(f / "stim.npy", 1),
        "stim.npy: not a readable .npy file",
    ),
    "deleted meta.json": (lambda f: (f / "meta.json").unlink(), "meta.json: missing"),
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_data_module_regenerates_a_damaged_synthetic_session(session, damage, capsys):
    recorded = read_meta(session)["arrays"]
    spoil, expected = DAMAGE[damage]
    spoil(session)
    dm = MultiDatasetDM(tiny_config(session.parents[1]), batch_size=16)
    dm.prepare_data()
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out  # one line, naming the folder and what was wrong
    assert out[0].startswith(f"{session}: damaged session ({expected}")
    assert out[0].endswith("regenerating it")
    assert_regenerated(session, recorded)
    dm.setup("fit")  # every rank runs setup again: a sound session is not touched
    assert capsys.readouterr().out == ""
    batch = next(iter(dm.train_dataloader()))
    (group,) = batch
    assert group["stim"].shape == (16, 1, 6, 16, 16) and group["robs"].shape == (16, 12)


def test_flipped_data_bytes_are_found_by_checksum_in_generate_only(session, capsys):
    """The start-up check reads headers only; ``generate(verify=True)`` reads everything."""
    recorded = read_meta(session)["arrays"]
    flip_byte(session / "robs.npy", 5000)  # inside the data: header and size still agree
    config = tiny_config(session.parents[1])
    generate_dataset(config, verify=False)
    assert capsys.readouterr().out == ""  # not noticed without checksums: by design
    assert generate_dataset(config, verify=True) == [session]
    (line,) = capsys.readouterr().out.strip().splitlines()
    assert line.startswith(f"{session}: damaged session (robs.npy: checksum mismatch")
    assert_regenerated(session, recorded)


def _repair_after_barrier(root: Path, barrier, log: str) -> None:
    sys.stdout = open(log, "w")  # noqa: SIM115 - the child's notices, for the parent
    barrier.wait()
    generate_dataset(tiny_config(root), verify=True)
    sys.stdout.flush()


def test_ranks_finding_the_same_damage_regenerate_it_once(session, tmp_path):
    recorded = read_meta(session)["arrays"]
    truncate(session / "stim.npy")
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(3)
    logs = [tmp_path / f"rank{i}.out" for i in range(3)]
    procs = [
        ctx.Process(target=_repair_after_barrier, args=(session.parents[1], barrier, str(log)))
        for log in logs
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
    assert [proc.exitcode for proc in procs] == [0, 0, 0]
    notices = [line for log in logs for line in log.read_text().splitlines()]
    assert len(notices) == 1 and "stim.npy: truncated" in notices[0]  # the others waited
    assert_regenerated(session, recorded)


def test_damaged_stimulus_copy_is_derived_again(session, capsys):
    config = tiny_config(session.parents[1])
    MultiDatasetDM(config, batch_size=8, dset_dtype="float32").prepare_data()
    copy = session / "stim.float32.npy"
    good = file_digest(copy)
    truncate(copy, 5000)
    dm = MultiDatasetDM(config, batch_size=8, dset_dtype="float32")
    dm.setup("fit")
    (line,) = capsys.readouterr().out.strip().splitlines()
    assert line.startswith(f"{copy}: truncated: 5000 bytes") and "deriving it again" in line
    assert file_digest(copy) == good


# --- sessions that are not ours to regenerate (recorded data) -------------------------


@pytest.fixture
def recorded(session, tmp_path) -> Path:
    """A session outside the generator's store, as recorded data would be."""
    folder = tmp_path / "recordings" / "monkey_0421"
    shutil.copytree(session, folder)
    return folder


def _write_npy(file: Path, array: np.ndarray) -> None:
    np.save(file, array)


RECORDED_DAMAGE = {
    "truncated": (lambda f: truncate(f / "robs.npy"), "robs.npy", "truncated: 1000 bytes"),
    "invalid meta": (lambda f: (f / "meta.json").write_text("{oops"), "meta.json", "not valid"),
    "missing file": (lambda f: (f / "behavior.npy").unlink(), "behavior.npy", "missing"),
    "dtype vs meta": (
        lambda f: _write_npy(f / "dfs.npy", np.ones((3000, 12), np.float64)),
        "dfs.npy",
        "holds float64, meta.json says uint8",
    ),
    "frames differ": (
        lambda f: _write_npy(f / "contrast.npy", np.ones(2990, np.float32)),
        "contrast.npy",
        "has shape [2990], meta.json says [3000]",
    ),
    "units differ (no meta entry)": (
        lambda f: (
            _write_npy(f / "robs.npy", np.ones((3000, 5), np.float32)),
            _drop_array_entries(f),
        ),
        "robs.npy",
        "shape [3000, 5]: meta.json says n_units=12",
    ),
}


def _drop_array_entries(folder: Path) -> None:
    """Recorded data need not list its arrays in meta.json: the headers still agree."""
    meta = json.loads((folder / "meta.json").read_text())
    del meta["arrays"]
    (folder / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("damage", RECORDED_DAMAGE, ids=list(RECORDED_DAMAGE))
def test_damaged_recorded_session_is_a_data_error_naming_the_file(recorded, damage):
    spoil, file, problem = RECORDED_DAMAGE[damage]
    spoil(recorded)
    with pytest.raises(DataError) as caught:
        SessionArrays(recorded)
    message = str(caught.value)
    assert message.startswith(f"{recorded / file}: {problem}"), message
    assert "\n" not in message and caught.value.exit_code == exit_codes.DATA_ERROR
    assert not exit_codes.is_retryable(caught.value.exit_code)


def test_sound_recorded_session_without_array_entries_opens(recorded):
    _drop_array_entries(recorded)
    arrays = SessionArrays(recorded)
    assert arrays.array("robs").shape == (3000, 12)


# --- end to end: the trainer's command line ----------------------------------------


TRAIN = (
    "--model_config", "res_small", "--dataset_configs_path", "synthetic_tiny",
    "--max_epochs", "1", "--steps_per_epoch", "2", "--limit_val_batches", "2",
)  # fmt: skip


def test_train_regenerates_a_truncated_session_and_finishes(tmp_path, tiny_data):
    root = tmp_path / "data"
    shutil.copytree(tiny_data, root)
    config = tiny_config(root, sessions=2)
    folder = config.session_dir(config.sessions[1])
    truncate(folder / "robs.npy")
    done = subprocess.run(
        [sys.executable, "-m", "trainer", *TRAIN, "--data_root", str(root),
         "--run_dir", str(tmp_path / "run")],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
        env={**os.environ, "WANDB_MODE": "disabled"},
    )  # fmt: skip
    assert done.returncode == exit_codes.SUCCESS, done.stderr[-2000:]
    notices = [line for line in done.stdout.splitlines() if "damaged session" in line]
    assert len(notices) == 1, notices
    assert notices[0].startswith(f"{folder}: damaged session (robs.npy: truncated: 1000 bytes")
    assert verify_session(folder, checksums=True) == []
    assert "COREJOB_RESULT" in done.stdout
