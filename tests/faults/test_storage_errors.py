"""Full, failing and read-only storage: one line naming the path, the contract's exit code.

ENOSPC/EDQUOT/EIO/ESTALE/ENOTCONN may clear by themselves: retryable 144. EROFS/EACCES/EPERM
stay until someone changes the volume: permanent 3. The mapping is tested directly (every
errno), and against real file systems where the test can make them: a size-limited tmpfs
(genuinely full) and a tmpfs mounted read-only (root ignores permission bits, but not
``ro``). Those need ``mount`` (root here); without it they skip and say why.
"""

from __future__ import annotations

import errno
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.volumes import mounted_tmpfs
from trainer.cli import _exit_code_for
from trainer.contract import exit_codes
from trainer.contract.errors import DataError, StorageError, storage_error
from trainer.data import MultiDatasetDM, load_dataset_config
from trainer.data.sessions import raw_session_folders
from trainer.recordings.store import verify_raw_session

TRAIN = (
    "train",
    "--model_config",
    "res_small",
    "--dataset_configs_path",
    "synthetic_tiny",
    "--max_epochs",
    "1",
    "--steps_per_epoch",
    "2",
    "--limit_val_batches",
    "2",
)


def remount_read_only(path: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
    with pytest.raises(OSError) as caught:
        (path / "probe").write_text("x")
    assert caught.value.errno == errno.EROFS  # genuinely read-only, even for root


def trainer_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "trainer", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=180,
    )


def the_error_line(stderr: str) -> str:
    """The one ``corejob-train:`` line, which must end stderr (Lightning logs go there too)."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    ours = [line for line in lines if line.startswith("corejob-train:")]
    assert len(ours) == 1 and lines[-1] == ours[0], stderr
    return ours[0]


# --- the mapping, every errno -------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected", "words"),
    [
        (errno.ENOSPC, exit_codes.STORAGE_UNAVAILABLE, "no space left"),
        (errno.EDQUOT, exit_codes.STORAGE_UNAVAILABLE, "quota"),
        (errno.EIO, exit_codes.STORAGE_UNAVAILABLE, "input/output error"),
        (errno.ESTALE, exit_codes.STORAGE_UNAVAILABLE, "stale file handle"),
        (errno.ENOTCONN, exit_codes.STORAGE_UNAVAILABLE, "not connected"),
        (errno.EROFS, exit_codes.DATA_ERROR, "read-only file system"),
        (errno.EACCES, exit_codes.DATA_ERROR, "permission denied"),
        (errno.EPERM, exit_codes.DATA_ERROR, "not permitted"),
    ],
)
def test_storage_oserrors_are_one_line_naming_the_path(code, expected, words, capsys):
    error = OSError(code, "os message", "/runs/job/checkpoints/last.ckpt")
    assert _exit_code_for(error, debug=False) == expected
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("corejob-train: error: /runs/job/checkpoints/last.ckpt: ")
    assert words in err and "unexpected" not in err
    assert exit_codes.is_retryable(expected) == (expected == exit_codes.STORAGE_UNAVAILABLE)


def test_exit_code_decisions_follow_the_operator_rule():
    assert not exit_codes.is_retryable(exit_codes.DATA_ERROR)  # 1-127: the job fails
    assert exit_codes.is_retryable(exit_codes.STORAGE_UNAVAILABLE)  # >= 128: restarted
    codes = [v for k, v in vars(exit_codes).items() if k.isupper() and k != "RETRYABLE_MIN"]
    assert len(codes) == len(set(codes))  # no two meanings share a code


def test_other_oserrors_and_implicit_contexts_stay_unexpected(capsys):
    assert _exit_code_for(FileNotFoundError(errno.ENOENT, "gone", "/x"), False) == 1
    assert "unexpected FileNotFoundError" in capsys.readouterr().err
    # An OSError merely handled on the way (__context__) says nothing about this failure.
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device", "/elsewhere")
        except OSError:
            raise RuntimeError("a different bug") from None
    except RuntimeError as error:
        assert _exit_code_for(error, False) == exit_codes.UNEXPECTED_ERROR


def test_an_explicit_cause_is_mapped_and_a_missing_filename_still_gives_one_line(capsys):
    cause = OSError(errno.EIO, "Input/output error", "/data/synthetic/s/stim.npy")
    wrapped = RuntimeError("loading failed")
    wrapped.__cause__ = cause
    assert _exit_code_for(wrapped, False) == exit_codes.STORAGE_UNAVAILABLE
    assert "/data/synthetic/s/stim.npy: input/output error" in capsys.readouterr().err
    # A failed write() on an open file carries no file name: still one line, still 144.
    assert _exit_code_for(OSError(errno.ENOSPC, "No space"), False) == 144
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no space left on device" in err


def test_storage_errors_are_one_line_picklable_and_take_a_path_when_the_os_gave_none():
    converted = storage_error(OSError(errno.ENOSPC, "No space"), Path("/runs/a b/metrics.json"))
    assert isinstance(converted, StorageError)
    assert str(converted).startswith("/runs/a b/metrics.json: no space left on device")
    assert converted.exit_code == 144 and "\n" not in str(converted)
    data = DataError("/d/robs.npy", "truncated:\n  1000 bytes")  # newlines are flattened
    assert str(data) == "/d/robs.npy: truncated: 1000 bytes" and data.exit_code == 3
    for error in (converted, data):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error)
    assert storage_error(OSError(errno.ENOENT, "gone", "/x")) is None


# --- real file systems ---------------------------------------------------------------


def _tiny_config(root: Path, sessions: int = 1):
    return load_dataset_config("synthetic_tiny", data_root=root, max_datasets=sessions)


def _copy_sessions(tiny_data: Path, root: Path, sessions: int = 1) -> list[Path]:
    """Copy already generated raw sessions (the shared ``tiny_data``, without their derived
    arrays) under ``root``."""
    config = _tiny_config(root, sessions)
    folders = [config.raw_session_dir(s) for s in config.sessions]
    for folder in folders:
        source = tiny_data / "synthetic_raw" / folder.name
        shutil.copytree(source, folder, ignore=shutil.ignore_patterns("derived"))
    return folders


def test_full_volume_while_generating_names_the_file_and_is_retryable(tmp_path):
    with mounted_tmpfs(tmp_path / "small", "256k") as root:
        config = _tiny_config(root)
        with pytest.raises(StorageError) as caught:
            raw_session_folders(config)
        message = str(caught.value)
        # Named where it is published, not the private temporary folder (already gone).
        folder = config.raw_session_dir(config.sessions[0])
        assert message.startswith(f"{folder}/") and message.split(":")[0].endswith(".npy")
        assert "no space left on device" in message and "\n" not in message
        assert caught.value.exit_code == exit_codes.STORAGE_UNAVAILABLE
        left = [p.name for p in (root / "synthetic_raw").iterdir() if p.suffix != ".lock"]
        assert left == []  # the half-written temporary folder is gone: its space is free


def test_full_volume_while_deriving_names_the_derived_file(tmp_path, tiny_data):
    with mounted_tmpfs(tmp_path / "small", "4m") as root:
        (folder,) = _copy_sessions(tiny_data, root)  # 2.2 MB; float32 arrays need 3.3 MB
        dm = MultiDatasetDM(_tiny_config(root), batch_size=8, dset_dtype="float32")
        with pytest.raises(StorageError) as caught:
            dm.prepare_data()
        message = str(caught.value)
        assert message.startswith(f"{folder}/derived/") and "no space left" in message
        assert message.split(":")[0].endswith(".npy") and ".tmp-" not in message
        left = [p.name for p in (folder / "derived").iterdir() if p.suffix != ".lock"]
        assert left == []  # nothing half-written is left
        assert verify_raw_session(folder) == []  # the session itself is untouched


def test_full_volume_while_regenerating_names_the_damaged_file(tmp_path, tiny_data):
    with mounted_tmpfs(tmp_path / "small", "3m") as root:
        (folder,) = _copy_sessions(tiny_data, root)
        robs = folder / "backimage" / "robs.npy"
        with open(robs, "r+b") as handle:
            handle.truncate(1000)
        with pytest.raises(StorageError) as caught:  # the new copy does not fit next to it
            MultiDatasetDM(_tiny_config(root), batch_size=8).prepare_data()
        message = str(caught.value)
        assert message.startswith(f"{robs}: robs: truncated: 1000 bytes")
        assert "regenerating the session failed" in message and "no space left" in message
        assert caught.value.exit_code == exit_codes.STORAGE_UNAVAILABLE


def test_generate_on_a_full_volume_exits_144_with_one_line(tmp_path):
    with mounted_tmpfs(tmp_path / "small", "256k") as root:
        done = trainer_cli(
            "generate", "--dataset_configs_path", "synthetic_tiny", "--data_root", str(root),
            cwd=tmp_path,
        )  # fmt: skip
    assert done.returncode == exit_codes.STORAGE_UNAVAILABLE, done.stderr
    line = the_error_line(done.stderr)
    assert f"{root}/synthetic_raw/tiny_back-" in line and ".tmp-" not in line
    assert "no space left on device" in line


def test_read_only_run_dir_exits_3_naming_it(tmp_path, tiny_data):
    with mounted_tmpfs(tmp_path / "ro", "1m") as mount:
        remount_read_only(mount)
        run_dir = mount / "run"
        done = trainer_cli(
            *TRAIN, "--data_root", str(tiny_data), "--run_dir", str(run_dir), cwd=tmp_path
        )
    assert done.returncode == exit_codes.DATA_ERROR, done.stderr
    line = the_error_line(done.stderr)
    assert line.startswith(f"corejob-train: error: {mount}") and "read-only file system" in line


def test_read_only_data_volume_with_a_damaged_session_exits_3_naming_the_file(tmp_path, tiny_data):
    with mounted_tmpfs(tmp_path / "ro", "8m") as root:
        folders = _copy_sessions(tiny_data, root, sessions=2)
        robs = folders[1] / "gaborium" / "robs.npy"
        with open(robs, "r+b") as handle:
            handle.truncate(1000)
        remount_read_only(root)
        done = trainer_cli(
            *TRAIN, "--data_root", str(root), "--run_dir", str(tmp_path / "run"), cwd=tmp_path
        )
    assert done.returncode == exit_codes.DATA_ERROR, done.stderr
    line = the_error_line(done.stderr)
    assert line.startswith(f"corejob-train: error: {robs}: robs: truncated: 1000 bytes")
    assert "read-only file system" in line
    assert f"{folders[1]}: damaged session (gaborium/robs.npy: robs: truncated" in done.stdout
