"""The derived-array cache: reused, re-derived when stale or damaged, safe under races."""

from __future__ import annotations

import concurrent.futures
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from tests.support.volumes import read_only_bind
from tests.trainer.data.derived.conftest import HISTORY_CONFIG
from trainer.contract.errors import DataError
from trainer.data.derived import cache
from trainer.data.derived.cache import DerivedSession, derived_problems, ensure_derived
from trainer.data.derived.derive import derive_session
from trainer.recordings.store import open_raw_session

WHERE = str(HISTORY_CONFIG)


def copy_raw(raw_folder: Path, tmp_path: Path) -> Path:
    """A private copy of the raw session (the cache is written inside it)."""
    target = tmp_path / "s"
    for file in raw_folder.rglob("*"):
        if "derived" in file.relative_to(raw_folder).parts or not file.is_file():
            continue
        (target / file.relative_to(raw_folder)).parent.mkdir(parents=True, exist_ok=True)
        (target / file.relative_to(raw_folder)).write_bytes(file.read_bytes())
    return target


def test_derived_once_then_reused_and_keyed_by_what_shapes_them(
    raw_folder, history_fields, tmp_path
) -> None:
    raw = copy_raw(raw_folder, tmp_path)
    lines: list[str] = []
    first = ensure_derived(raw, history_fields, "uint8", WHERE, lines.append)
    assert first.parent == raw / "derived" and derived_problems(first) == []
    stamp = (first / "meta.json").stat().st_mtime_ns
    assert ensure_derived(raw, history_fields, "uint8", WHERE) == first
    assert (first / "meta.json").stat().st_mtime_ns == stamp  # reused, not rewritten
    # the split and seed do not shape the arrays; units, ops and the dtype do
    assert ensure_derived(raw, {**history_fields, "seed": 9}, "uint8", WHERE) == first
    fewer = {**history_fields, "cids": history_fields["cids"][:3]}
    assert ensure_derived(raw, fewer, "uint8", WHERE) != first
    assert ensure_derived(raw, history_fields, "float32", WHERE) != first
    assert lines == [] and not [p for p in (raw / "derived").iterdir() if ".tmp-" in p.name]


def test_a_damaged_cache_is_derived_again_saying_so(raw_folder, history_fields, tmp_path):
    raw = copy_raw(raw_folder, tmp_path)
    folder = ensure_derived(raw, history_fields, "uint8", WHERE)
    good = np.load(folder / "behavior.npy")
    with open(folder / "behavior.npy", "r+b") as handle:
        handle.truncate(1000)
    with pytest.raises(DataError, match=r"behavior\.npy: truncated: 1000 bytes"):
        DerivedSession(folder)
    lines: list[str] = []
    assert ensure_derived(raw, history_fields, "uint8", WHERE, lines.append) == folder
    assert len(lines) == 1 and lines[0].startswith(f"{folder}: damaged derived arrays (")
    np.testing.assert_array_equal(DerivedSession(folder).array("behavior"), good)


def test_a_changed_raw_session_is_not_served_from_a_stale_cache(
    raw_folder, history_fields, tmp_path
) -> None:
    raw = copy_raw(raw_folder, tmp_path)
    before = ensure_derived(raw, history_fields, "uint8", WHERE)
    manifest = raw / "session.json"
    manifest.write_text(manifest.read_text().replace('"lab": "synthetic"', '"lab": "other"'))
    assert ensure_derived(raw, history_fields, "uint8", WHERE) != before


def test_concurrent_ranks_derive_once(raw_folder, history_fields, tmp_path, monkeypatch):
    """Three derivations at once (threads: each opens the lock file itself, so ``flock``
    serialises them as it does processes; the shared lock and publish machinery is raced by
    real processes in ``tests/trainer/synthetic/test_raw_session.py``)."""
    raw = copy_raw(raw_folder, tmp_path)
    barrier = threading.Barrier(3)
    lines: list[str] = []
    calls: list[str] = []

    def counted(*args, **kwargs):
        calls.append(args[0].name)
        return derive_session(*args, **kwargs)

    monkeypatch.setattr(cache, "derive_session", counted)

    def derive() -> Path:
        barrier.wait()
        return ensure_derived(raw, history_fields, "uint8", WHERE, lines.append)

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        paths = {f.result(timeout=60) for f in [pool.submit(derive) for _ in range(3)]}
    assert len(paths) == 1 and lines == [] and calls == ["s"]  # the others waited, reused
    published = [n for n in os.listdir(raw / "derived") if not n.endswith(".lock")]
    assert published == [paths.pop().name]  # one folder, no leftover temporary copies


def test_a_read_only_data_volume_uses_its_derived_arrays_or_derived_dir(
    raw_folder, history_fields, tmp_path
) -> None:
    """A data volume mounted read-only: arrays derived beforehand are used in place;
    missing ones are one line naming the session and --derived_dir, and with
    ``derived_dir`` they are derived there (per session folder) and then reused."""
    raw = copy_raw(raw_folder, tmp_path / "volume")
    with read_only_bind(raw.parent, tmp_path / "ro") as mount:
        ro_raw = mount / raw.name
        with pytest.raises(DataError, match=r"read-only, and its derived arrays .* --derived_dir"):
            ensure_derived(ro_raw, history_fields, "uint8", WHERE)
        cache_root = tmp_path / "shared"
        lines: list[str] = []
        elsewhere = ensure_derived(
            ro_raw, history_fields, "uint8", WHERE, lines.append, derived_dir=cache_root
        )
        assert elsewhere.parent == cache_root / raw.name and derived_problems(elsewhere) == []
        assert ensure_derived(ro_raw, history_fields, "uint8", WHERE, derived_dir=cache_root) == (
            elsewhere
        )
        assert lines == [] and not (raw / "derived").exists()
    beside = ensure_derived(raw, history_fields, "uint8", WHERE)  # prepared where writable
    with read_only_bind(raw.parent, tmp_path / "ro") as mount:
        ro_raw = mount / raw.name
        used = ensure_derived(ro_raw, history_fields, "uint8", WHERE, derived_dir=cache_root)
        assert used == ro_raw / "derived" / beside.name
        np.testing.assert_array_equal(
            DerivedSession(used).array("behavior"), DerivedSession(elsewhere).array("behavior")
        )


def test_stim_is_stored_newest_first_and_read_in_time_order(raw_folder, history_fields, tmp_path):
    """On disk the stimulus runs backwards (VisionCore's lag windows then read forwards in
    memory); ``DerivedSession.array`` gives it back in time order, equal to the derivation."""
    raw = copy_raw(raw_folder, tmp_path)
    folder = ensure_derived(raw, history_fields, "uint8", WHERE)
    session = DerivedSession(folder)
    expected = derive_session(open_raw_session(raw), history_fields, "uint8", WHERE).arrays
    np.testing.assert_array_equal(session.array("stim"), expected["stim"])
    on_disk = np.load(folder / "stim.npy", mmap_mode="r")
    np.testing.assert_array_equal(on_disk, expected["stim"][::-1])
    assert session.meta["arrays"]["stim"]["time_reversed"] is True
    np.testing.assert_array_equal(session.array("robs"), expected["robs"])  # others as they are
