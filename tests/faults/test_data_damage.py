"""Damaged data: synthetic raw sessions are regenerated and derived arrays derived again (one
line says so each time); recorded sessions, which are not ours to regenerate, fail by name.

Every case starts from a copy of the shared generated ``synthetic_tiny`` (``tiny_data``:
raw sessions under ``synthetic_raw/`` with their derived arrays in ``derived/``) and
damages one file the way volumes do: truncation (a full disk mid-copy), garbage in a
manifest, a deleted file, flipped bytes (bit rot, caught by the checksum only).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from trainer.contract import exit_codes
from trainer.contract.errors import DataError
from trainer.data import MultiDatasetDM, load_dataset_config
from trainer.data.sessions import raw_session_folders
from trainer.recordings.files import file_digest
from trainer.recordings.store import verify_raw_session


def tiny_config(root: Path, sessions: int = 1):
    return load_dataset_config("synthetic_tiny", data_root=root, max_datasets=sessions)


@pytest.fixture
def session(tmp_path, tiny_data) -> Path:
    """A private copy of the first ``synthetic_tiny`` raw session under ``tmp_path/data``."""
    config = tiny_config(tmp_path / "data")
    folder = config.raw_session_dir(config.sessions[0])
    shutil.copytree(tiny_data / "synthetic_raw" / folder.name, folder)
    assert verify_raw_session(folder, checksums=True) == []
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


def digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): file_digest(p)
        for p in sorted(folder.rglob("*.npy"))
        if "derived" not in p.relative_to(folder).parts
    }


def assert_regenerated(folder: Path, before: dict[str, str]) -> None:
    """Every raw file is back, byte for byte, and nothing temporary is left."""
    assert verify_raw_session(folder, checksums=True) == []
    assert digests(folder) == before
    leftovers = [p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}.")]
    assert leftovers in ([], [f".{folder.name}.lock"])


DAMAGE = {
    "truncated robs.npy": (
        lambda f: truncate(f / "backimage" / "robs.npy"),
        "backimage/robs.npy: robs: truncated: 1000 bytes",
    ),
    "corrupt session.json": (
        lambda f: (f / "session.json").write_text('{"format": "corejob-raw'),
        "session.json: not valid JSON",
    ),
    "deleted eyepos.npy": (
        lambda f: (f / "backimage" / "eyepos.npy").unlink(),
        "backimage/eyepos.npy: eyepos: missing",
    ),
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_data_module_regenerates_a_damaged_synthetic_session(session, damage, capsys):
    before = digests(session)
    spoil, expected = DAMAGE[damage]
    spoil(session)
    dm = MultiDatasetDM(tiny_config(session.parents[1]), batch_size=16)
    dm.prepare_data()
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out  # one line, naming the folder and what was wrong
    assert out[0].startswith(f"{session}: damaged session (") and expected in out[0]
    assert out[0].endswith("regenerating it")
    assert_regenerated(session, before)
    dm.setup("fit")  # every rank runs setup again: a sound session is not touched
    assert capsys.readouterr().out == ""
    (group,) = next(iter(dm.train_dataloader()))
    assert group["stim"].shape == (16, 1, 6, 16, 16) and group["robs"].shape == (16, 12)


def test_flipped_data_bytes_are_found_by_checksum_in_generate_only(session, capsys):
    """The start-up check reads headers only; ``generate`` (verify) reads everything."""
    before = digests(session)
    flip_byte(session / "backimage" / "robs.npy", 5000)  # header and size still agree
    config = tiny_config(session.parents[1])
    assert raw_session_folders(config) == [session]
    assert capsys.readouterr().out == ""  # not noticed without checksums: by design
    assert raw_session_folders(config, verify=True) == [session]
    (line,) = capsys.readouterr().out.strip().splitlines()
    assert line.startswith(f"{session}: damaged session (backimage/robs.npy: checksum mismatch")
    assert_regenerated(session, before)


def _repair_after_barrier(root: Path, barrier, log: str) -> None:
    sys.stdout = open(log, "w")  # noqa: SIM115 - the child's notices, for the parent
    barrier.wait()
    raw_session_folders(tiny_config(root), verify=True)
    sys.stdout.flush()


def test_ranks_finding_the_same_damage_regenerate_it_once(session, tmp_path):
    before = digests(session)
    truncate(session / "backimage" / "stim.npy")
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
    assert len(notices) == 1 and "stim.npy: stim: truncated" in notices[0]  # the others waited
    assert_regenerated(session, before)


def test_damaged_derived_arrays_are_derived_again(session, capsys):
    config = tiny_config(session.parents[1])
    dm = MultiDatasetDM(config, batch_size=8, dset_dtype="float32")
    (folder,) = dm._materialize()
    good = file_digest(folder / "stim.npy")
    truncate(folder / "stim.npy", 5000)
    capsys.readouterr()
    MultiDatasetDM(config, batch_size=8, dset_dtype="float32").setup("fit")
    (line,) = capsys.readouterr().out.strip().splitlines()
    assert line.startswith(f"{folder}: damaged derived arrays ({folder}/stim.npy: truncated")
    assert line.endswith("deriving them again")
    assert file_digest(folder / "stim.npy") == good


# --- sessions that are not ours to regenerate (recorded data) -------------------------


@pytest.fixture
def recorded(session, tmp_path) -> Path:
    """The session as a recording imported to ``<data_root>/<name>/`` (no derived arrays)."""
    folder = tmp_path / "recorded" / "tiny_back"
    shutil.copytree(session, folder, ignore=shutil.ignore_patterns("derived"))
    return folder


def recorded_config(folder: Path, tmp_path: Path):
    """synthetic_tiny's first session as recorded data: no ``synthetic:`` block."""
    data = yaml.safe_load(Path(load_dataset_config("synthetic_tiny").source).read_text())
    del data["synthetic"]
    parent = tmp_path / "recorded_tiny.yaml"
    parent.write_text(yaml.safe_dump({**data, "sessions": ["tiny_back"]}))
    (tmp_path / "recorded_tiny").mkdir()
    (tmp_path / "recorded_tiny" / "tiny_back.yaml").write_text("session: tiny_back\n")
    return load_dataset_config(str(parent), data_root=folder.parent)


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_damaged_recorded_session_is_a_data_error_naming_the_file(recorded, damage, tmp_path):
    spoil, expected = DAMAGE[damage]
    config = recorded_config(recorded, tmp_path)
    spoil(recorded)
    with pytest.raises(DataError) as caught:
        MultiDatasetDM(config, batch_size=8).prepare_data()
    message = str(caught.value)
    file = expected.split(":")[0]
    assert message.startswith(f"{recorded / file}: "), message
    assert "\n" not in message and caught.value.exit_code == exit_codes.DATA_ERROR
    assert not exit_codes.is_retryable(caught.value.exit_code)


# --- end to end: the trainer's command line ----------------------------------------


TRAIN = (
    "--model_config", "res_small", "--dataset_configs_path", "synthetic_tiny",
    "--max_epochs", "1", "--steps_per_epoch", "2", "--limit_val_batches", "2",
)  # fmt: skip


def test_train_regenerates_a_truncated_session_and_finishes(tmp_path, tiny_data):
    root = tmp_path / "data"
    shutil.copytree(tiny_data, root)
    config = tiny_config(root, sessions=2)
    folder = config.raw_session_dir(config.sessions[1])
    truncate(folder / "gaborium" / "robs.npy")
    done = subprocess.run(
        [sys.executable, "-m", "trainer", *TRAIN, "--data_root", str(root),
         "--run_dir", str(tmp_path / "run")],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
        env={**os.environ, "WANDB_MODE": "disabled"},
    )  # fmt: skip
    assert done.returncode == exit_codes.SUCCESS, done.stderr[-2000:]
    notices = [line for line in done.stdout.splitlines() if "damaged session" in line]
    assert len(notices) == 1, notices
    assert notices[0].startswith(f"{folder}: damaged session (gaborium/robs.npy: robs: truncated")
    assert verify_raw_session(folder, checksums=True) == []
    assert "COREJOB_RESULT" in done.stdout
