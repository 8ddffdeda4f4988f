"""The raw-session store: bit-for-bit round trips, damage named by file and key, atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.support.volumes import mounted_tmpfs
from trainer.contract import exit_codes
from trainer.contract.errors import DataError, StorageError
from trainer.recordings.session import MissingPct, RawRecording, RawSession
from trainer.recordings.store import (
    is_raw_session,
    open_raw_session,
    verify_raw_session,
    write_raw_session,
)

CIDS = np.array([3, 7, 8, 15], dtype=np.int64)


def recording(stim_type: str, n_bins: int, rng, size: int = 6) -> RawRecording:
    robs = rng.poisson(0.4, size=(n_bins, CIDS.size)).astype(np.float32)
    covariates = {
        "stim": rng.integers(0, 256, size=(n_bins, size, size), dtype=np.uint8),
        "robs": robs,
        "eyepos": rng.normal(size=(n_bins, 2)).astype(np.float32),
        "dpi_valid": rng.random(n_bins) > 0.1,
        "trial_inds": np.repeat(np.arange(n_bins // 10), 10).astype(np.int64),
        "t_bins": np.arange(n_bins) / 240.0 + 1 / 480,
        "rates": rng.random((n_bins, CIDS.size)).astype(np.float32),
    }
    return RawRecording(stim_type, 240.0, covariates, {"note": stim_type, "n": np.int64(n_bins)})


def session(rng) -> RawSession:
    missing = MissingPct(
        times=np.linspace(0.0, 2.0, 5), pct=rng.uniform(0, 100, (5, CIDS.size)).astype(np.float32)
    )
    recordings = {
        "backimage": recording("backimage", 300, rng),
        "gratings": recording("gratings", 200, rng),
    }
    return RawSession("s1", CIDS, recordings, missing, {"lab": "test", "eye": "left"})


@pytest.fixture
def written(tmp_path) -> tuple[RawSession, Path]:
    original = session(np.random.default_rng(0))
    return original, write_raw_session(original, tmp_path / "s1", source={"tool": "test"})


def test_round_trip_is_bit_for_bit_and_memory_mapped(written):
    original, folder = written
    opened = open_raw_session(folder)
    assert opened.name == "s1" and opened.info == {"lab": "test", "eye": "left"}
    np.testing.assert_array_equal(opened.cids, CIDS)
    assert opened.cids.dtype == np.int64
    assert list(opened.recordings) == ["backimage", "gratings"]
    for stim_type, want in original.recordings.items():
        got = opened.recording(stim_type)
        assert got.source_rate == 240.0 and got.meta == {"note": stim_type, "n": want.n_bins}
        assert sorted(got.covariates) == sorted(want.covariates)
        for key, array in want.covariates.items():
            loaded = got.covariates[key]
            assert isinstance(loaded, np.memmap) and not loaded.flags.writeable
            assert loaded.dtype == array.dtype and loaded.tobytes() == array.tobytes(), key
    np.testing.assert_array_equal(opened.missing_pct.times, original.missing_pct.times)
    np.testing.assert_array_equal(opened.missing_pct.pct, original.missing_pct.pct)
    manifest = json.loads((folder / "session.json").read_text())
    assert manifest["format"] == "corejob-raw-session" and manifest["version"] == 1
    assert manifest["source"] == {"tool": "test"} and manifest["types"] == ["backimage", "gratings"]
    assert verify_raw_session(folder, checksums=True) == []
    assert sorted(p.name for p in folder.parent.iterdir()) == ["s1"]  # no temporary left


def test_an_existing_session_is_kept_unless_replaced(written, tmp_path):
    _, folder = written
    other = session(np.random.default_rng(1))
    write_raw_session(other, folder)  # another writer got there first: theirs stays
    stim = open_raw_session(folder).recording("backimage").covariates["stim"]
    assert stim.tobytes() != other.recordings["backimage"].covariates["stim"].tobytes()
    write_raw_session(other, folder, replace=True)
    stim = open_raw_session(folder).recording("backimage").covariates["stim"]
    assert stim.tobytes() == other.recordings["backimage"].covariates["stim"].tobytes()


def _truncate(folder: Path) -> tuple[Path, str]:
    file = folder / "backimage" / "robs.npy"
    with open(file, "r+b") as handle:
        handle.truncate(500)
    return file, "robs: truncated: 500 bytes"


def _drop_key(folder: Path) -> tuple[Path, str]:
    meta_file = folder / "gratings" / "meta.json"
    meta = json.loads(meta_file.read_text())
    del meta["arrays"]["eyepos"]
    meta_file.write_text(json.dumps(meta))
    (folder / "gratings" / "eyepos.npy").unlink()
    return folder / "gratings" / "eyepos.npy", "eyepos: missing"


def _wrong_dtype(folder: Path) -> tuple[Path, str]:
    """An importer that wrote floats where booleans belong, and recorded them faithfully."""
    file = folder / "backimage" / "dpi_valid.npy"
    np.save(file, np.ones(300, dtype=np.float32))
    meta_file = folder / "backimage" / "meta.json"
    meta = json.loads(meta_file.read_text())
    meta["arrays"]["dpi_valid"].update(dtype="float32", bytes=file.stat().st_size)
    meta_file.write_text(json.dumps(meta))
    return file, "dpi_valid: dtype float32 (expected kind 'b')"


def _replaced_file(folder: Path) -> tuple[Path, str]:
    file = folder / "backimage" / "stim.npy"
    np.save(file, np.zeros((300, 6, 6), dtype=np.int16))
    return file, "stim: holds int16, meta.json says uint8"


def _no_manifest(folder: Path) -> tuple[Path, str]:
    (folder / "session.json").unlink()
    return folder / "session.json", "missing"


def _manifest_key(folder: Path) -> tuple[Path, str]:
    file = folder / "session.json"
    manifest = json.loads(file.read_text())
    del manifest["cids"]
    file.write_text(json.dumps(manifest))
    return file, "cids: missing"


def _missing_pct_width(folder: Path) -> tuple[Path, str]:
    file = folder / "missing_pct.npy"
    np.save(file, np.zeros((5, 3), dtype=np.float32))
    manifest = json.loads((folder / "session.json").read_text())
    manifest["arrays"]["missing_pct"].update(shape=[5, 3], bytes=file.stat().st_size)
    (folder / "session.json").write_text(json.dumps(manifest))
    return file, "missing_pct: float32 shape (5, 3), expected float (5, 4) for 4 cids"


@pytest.mark.parametrize(
    "damage",
    [_truncate, _drop_key, _wrong_dtype, _replaced_file, _no_manifest, _manifest_key,
     _missing_pct_width],
)  # fmt: skip
def test_damage_is_one_line_naming_file_and_key(written, damage):
    _, folder = written
    file, problem = damage(folder)
    with pytest.raises(DataError) as caught:
        open_raw_session(folder)
    message = str(caught.value)
    assert message.startswith(f"{file}: {problem}"), message
    assert "\n" not in message and caught.value.exit_code == exit_codes.DATA_ERROR
    assert verify_raw_session(folder) == [message]


def test_an_invalid_session_is_refused_before_anything_is_written(tmp_path):
    rng = np.random.default_rng(2)
    bad = session(rng)
    covariates = dict(bad.recordings["gratings"].covariates, robs=np.zeros((200, 3), np.float32))
    recordings = {**bad.recordings, "gratings": RawRecording("gratings", 240.0, covariates)}
    with pytest.raises(DataError) as caught:
        write_raw_session(RawSession("s1", CIDS, recordings), tmp_path / "s1")
    assert str(caught.value).startswith(f"{tmp_path}/s1/gratings/robs.npy: robs: shape (200, 3)")
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_names_the_file_and_leaves_no_session(tmp_path):
    original = session(np.random.default_rng(3))  # ~50 kB of arrays
    with mounted_tmpfs(tmp_path / "small", "32k") as root:
        with pytest.raises(StorageError) as caught:
            write_raw_session(original, root / "s1")
        message = str(caught.value)
        assert message.startswith(f"{root}/s1/") and ".npy: no space left on device" in message
        assert ".tmp-" not in message and caught.value.exit_code == 144
        assert list(root.iterdir()) == [] and not is_raw_session(root / "s1")


def test_checksums_find_a_changed_byte_that_headers_and_sizes_miss(written):
    _, folder = written
    file = folder / "gratings" / "stim.npy"
    with open(file, "r+b") as handle:
        handle.seek(-1, 2)
        last = handle.read(1)
        handle.seek(-1, 2)
        handle.write(bytes([last[0] ^ 0xFF]))
    assert verify_raw_session(folder) == []  # cheap checks: the file looks whole
    assert verify_raw_session(folder, checksums=True) == [
        f"{file}: checksum mismatch (sha256 differs from the recorded one)"
    ]
