"""Lazy generation on a shared volume: concurrent writers leave one complete session."""

from __future__ import annotations

import multiprocessing as mp
import os

import numpy as np

from tests.trainer.synthetic.frame_configs import load_frame_config
from trainer.synthetic import generate_dataset, generate_session, session_spec
from trainer.synthetic.session import simulate_session
from trainer.synthetic.store import is_complete, read_meta, write_session


def _generate_after_barrier(root, barrier, queue):
    config = load_frame_config("synthetic_tiny", data_root=root, max_datasets=1)
    barrier.wait()
    queue.put([str(p) for p in generate_dataset(config)])


def test_two_processes_generating_the_same_session_leave_one_valid_copy(tmp_path):
    ctx = mp.get_context("fork")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=_generate_after_barrier, args=(tmp_path, barrier, queue)) for _ in "ab"
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    paths = {tuple(queue.get(timeout=5)) for _ in procs}
    assert len(paths) == 1  # both report the same folder
    (folder,) = next(iter(paths))
    config = load_frame_config("synthetic_tiny", data_root=tmp_path, max_datasets=1)
    expected = simulate_session(session_spec(config, config.sessions[0]))
    for name, array in expected.arrays.items():
        np.testing.assert_array_equal(np.load(f"{folder}/{name}.npy", mmap_mode="r"), array)
    folders = [p.name for p in (tmp_path / "synthetic").iterdir() if p.is_dir()]
    assert folders == [config.session_dir(config.sessions[0]).name]  # no temp folders left
    assert oct(os.stat(folder).st_mode & 0o777) == oct(0o755)  # readable by other pods


def test_losing_writer_keeps_the_winner_and_force_replaces(tmp_path):
    config = load_frame_config("synthetic_tiny", data_root=tmp_path, max_datasets=1)
    session = config.sessions[0]
    first = generate_session(config, session)
    stamp = (first / "meta.json").stat().st_mtime_ns
    result = simulate_session(session_spec(config, session))
    assert write_session(result, first) == first  # lost the race: no error
    assert (first / "meta.json").stat().st_mtime_ns == stamp
    assert generate_session(config, session) == first  # complete: not regenerated
    (first / "stale").write_text("x")
    generate_session(config, session, force=True)
    assert is_complete(first) and not (first / "stale").exists()
    assert read_meta(first)["session"] == session.name


def test_incomplete_folder_is_replaced(tmp_path):
    config = load_frame_config("synthetic_tiny", data_root=tmp_path, max_datasets=1)
    folder = config.session_dir(config.sessions[0])
    folder.mkdir(parents=True)
    (folder / "stim.npy").write_text("half-written")
    generate_session(config, config.sessions[0])
    assert is_complete(folder) and np.load(folder / "stim.npy").dtype == np.uint8
