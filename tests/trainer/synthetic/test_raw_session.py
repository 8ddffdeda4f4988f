"""Synthetic raw sessions: what a 240 Hz recording holds, and generated once on a shared volume."""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

import numpy as np
import pytest

import trainer.synthetic.raw as raw
from tests.support.volumes import mounted_tmpfs
from trainer.configs.dataset_schema.synthetic import STIM_TYPES, resolve_params
from trainer.contract.errors import StorageError
from trainer.recordings.session import REQUIRED_COVARIATES, recording_problems
from trainer.recordings.store import open_raw_session
from trainer.synthetic import RawSessionSpec, ensure_raw_session, simulate_raw_session

TYPES = ("backimage", "gaborium", "gratings")


def tiny_spec(
    name: str = "raw_tiny", types: tuple[str, ...] = TYPES, **overrides
) -> RawSessionSpec:
    params = resolve_params({"preset": "tiny", **overrides})
    return RawSessionSpec(name, n_units=12, seed=5, types=types, n_lags=10, params=params)


@pytest.fixture(scope="module")
def tiny():
    return simulate_raw_session(tiny_spec())


def test_every_type_is_a_valid_240hz_recording_of_the_same_units(tiny):
    assert list(tiny.recordings) == list(TYPES) and set(TYPES) <= set(STIM_TYPES)
    n_units = tiny.cids.size
    assert n_units == 12 and np.all(np.diff(tiny.cids) > 0) and np.any(np.diff(tiny.cids) > 1)
    for recording in tiny.recordings.values():
        assert recording.source_rate == 240.0
        assert recording_problems(recording, n_units) == []
        assert set(REQUIRED_COVARIATES) | {"rates"} == set(recording.covariates)
        stim = recording.covariates["stim"]
        assert stim.dtype == np.uint8 and recording.n_bins == 2 * 3000  # 3000 frames at 120 Hz
        np.testing.assert_array_equal(stim[0::2], stim[1::2])  # the display runs at 120 Hz
        assert len({unit["bank_index"] for unit in tiny.info["units"]}) > 1


def test_trials_are_contiguous_unique_and_on_one_increasing_clock(tiny):
    seen: set[int] = set()
    last_time = -1.0
    for recording in tiny.recordings.values():
        trials, t_bins = recording.covariates["trial_inds"], recording.covariates["t_bins"]
        starts = np.r_[True, trials[1:] != trials[:-1]]
        runs = trials[starts]
        assert len(set(runs.tolist())) == runs.size  # every trial is one contiguous run
        assert not seen & set(runs.tolist())  # and its id is unique in the session
        seen |= set(runs.tolist())
        lengths = np.diff(np.r_[np.flatnonzero(starts), trials.size])
        assert np.all(lengths % 2 == 0)  # whole display frames: 240 -> 120 Hz never splits one
        steps = np.diff(t_bins)
        np.testing.assert_allclose(steps[~starts[1:]], 1 / 240.0, rtol=1e-9)
        assert np.all(steps[starts[1:]] > 0.2)  # inter-trial gaps
        assert t_bins[0] > last_time
        last_time = t_bins[-1]


def test_robs_are_poisson_counts_of_the_rates(tiny):
    robs = np.concatenate([r.covariates["robs"] for r in tiny.recordings.values()])
    rates = np.concatenate([r.covariates["rates"] for r in tiny.recordings.values()])
    assert np.all(robs == np.round(robs)) and robs.min() >= 0 and rates.min() >= 0
    # Per unit, the count total is Poisson(sum of rates): z-scores of a few sigma at most.
    z = (robs.sum(0) - rates.sum(0)) / np.sqrt(rates.sum(0))
    assert np.all(np.abs(z) < 4.5), z
    # Poisson dispersion: the squared residuals average to the rate (variance = mean).
    dispersion = ((robs - rates) ** 2).sum() / rates.sum()
    assert 0.95 < dispersion < 1.05, dispersion
    # Summed to 120 Hz frames, the rates are the presets' per-frame rates (0.3-0.8 for tiny).
    per_frame = rates[0::2] + rates[1::2]
    good = ~np.array([u["multi_unit"] for u in tiny.info["units"]])
    assert 0.15 < per_frame[:, good].mean() < 1.0


def test_eye_traces_have_saccades_drift_and_tracker_dropouts(tiny):
    for recording in tiny.recordings.values():
        eyepos, valid = recording.covariates["eyepos"], recording.covariates["dpi_valid"]
        assert eyepos.dtype == np.float32 and np.isfinite(eyepos).all()
        assert 0.85 < valid.mean() < 0.999  # blinks: a few percent of the samples
        # A saccade moves the eye > 0.4 deg within 25 ms (6 bins); drift and tracker noise
        # (median 0.1 deg) almost never do. Episodes are counted within valid trials only.
        trials = recording.covariates["trial_inds"]
        usable = valid[6:] & valid[:-6] & (trials[6:] == trials[:-6])
        moved = np.hypot(*(eyepos[6:] - eyepos[:-6]).T)
        fast = (moved > 0.4) & usable
        episodes = np.count_nonzero(fast[1:] & ~fast[:-1])
        n_saccades = recording.meta["n_saccades"]
        assert n_saccades > 10 and 0.75 * n_saccades <= episodes <= n_saccades
        assert 0.03 < np.median(moved[usable]) < 0.3  # fixational drift: moving, slowly


def test_missing_pct_has_multi_units_and_units_drifting_out(tiny):
    pct = tiny.missing_pct.pct
    assert pct.shape == (tiny.missing_pct.times.size, tiny.cids.size) and pct.dtype == np.float32
    median, peak = np.median(pct, 0), pct.max(0)
    multi = np.array([u["multi_unit"] for u in tiny.info["units"]])
    assert multi.sum() == 1 and median[multi].min() >= 45.0  # VisionCore keeps these
    assert np.all(median[~multi] < 45.0)
    drifting = ~multi & (peak > 80.0)
    assert drifting.any() and len(tiny.info["lost_epochs_s"]) == drifting.sum()
    end = max(r.covariates["t_bins"][-1] for r in tiny.recordings.values())
    assert tiny.missing_pct.times[0] <= 0.0 and tiny.missing_pct.times[-1] >= end
    # A unit that drifted out records (almost) nothing while it is lost.
    unit, start, stop = tiny.info["lost_epochs_s"][0]
    for recording in tiny.recordings.values():
        t_bins = recording.covariates["t_bins"]
        lost = (t_bins > start + 0.3 * (stop - start)) & (t_bins < stop - 0.3 * (stop - start))
        if lost.any():
            kept = recording.covariates["rates"][lost, unit].mean()
            assert kept < 0.2 * recording.covariates["rates"][:, unit].mean()


def test_generation_is_deterministic_in_the_spec():
    spec = tiny_spec(types=("gratings",), n_frames=400)
    one, two = simulate_raw_session(spec), simulate_raw_session(spec)
    for key, array in one.recordings["gratings"].covariates.items():
        assert array.tobytes() == two.recordings["gratings"].covariates[key].tobytes(), key
    other = simulate_raw_session(RawSessionSpec(**{**spec.__dict__, "seed": 6}))
    assert other.recordings["gratings"].covariates["robs"].tobytes() != (
        one.recordings["gratings"].covariates["robs"].tobytes()
    )


def test_bad_specs_name_the_field():
    with pytest.raises(ValueError) as caught:
        tiny_spec(types=("backimage", "movies"))
    assert caught.value.args[0] == "types"
    with pytest.raises(ValueError) as caught:
        RawSessionSpec("x", 4, 1, ("gratings",), 5, {}, source_rate=250.0)
    assert caught.value.args[0] == "source_rate"


def _ensure_after_barrier(root, spec, barrier, queue):
    barrier.wait()
    queue.put(str(ensure_raw_session(spec, root)))


def test_concurrent_callers_generate_once_and_share_the_folder(tmp_path, monkeypatch):
    calls = tmp_path / "calls.log"
    original = raw.simulate_raw_session

    def counted(spec):
        with open(calls, "a") as handle:  # O_APPEND: one line per generation, any process
            handle.write(f"{os.getpid()}\n")
        return original(spec)

    monkeypatch.setattr(raw, "simulate_raw_session", counted)
    spec = tiny_spec(types=("gaborium",), n_frames=600)
    ctx = mp.get_context("fork")  # the children inherit the counting generator
    barrier, queue = ctx.Barrier(3), ctx.Queue()
    procs = [
        ctx.Process(target=_ensure_after_barrier, args=(tmp_path, spec, barrier, queue))
        for _ in range(3)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    assert [proc.exitcode for proc in procs] == [0, 0, 0]
    folders = {queue.get(timeout=5) for _ in procs}
    assert len(folders) == 1 and len(calls.read_text().splitlines()) == 1
    folder = Path(folders.pop())
    assert folder == raw.raw_session_dir(spec, tmp_path)
    assert sorted(p.name for p in folder.parent.iterdir() if not p.name.endswith(".lock")) == [
        folder.name
    ]
    expected = original(spec).recordings["gaborium"].covariates
    for key, array in open_raw_session(folder).recordings["gaborium"].covariates.items():
        assert array.tobytes() == expected[key].tobytes(), key
    assert oct(os.stat(folder).st_mode & 0o777) == oct(0o755)  # readable by other pods


def test_a_damaged_session_is_regenerated_and_a_changed_spec_gets_its_own_folder(tmp_path):
    spec = tiny_spec(types=("gratings",), n_frames=400)
    folder = ensure_raw_session(spec, tmp_path)
    robs = folder / "gratings" / "robs.npy"
    good = robs.read_bytes()
    with open(robs, "r+b") as handle:
        handle.truncate(1000)
    notices: list[str] = []
    assert ensure_raw_session(spec, tmp_path, report=notices.append) == folder
    assert robs.read_bytes() == good
    assert notices == [
        f"{folder}: damaged session (gratings/robs.npy: robs: truncated: 1000 bytes, its header"
        f" (float32, shape [800, 12]) needs 38528); regenerating it"
    ]
    assert ensure_raw_session(tiny_spec(types=("gratings",), n_frames=402), tmp_path) != folder


def test_a_full_volume_is_one_retryable_line_and_leaves_no_session(tmp_path):
    spec = tiny_spec(types=("gratings",), n_frames=400)  # ~130 kB of arrays
    with mounted_tmpfs(tmp_path / "small", "64k") as root:
        with pytest.raises(StorageError) as caught:
            ensure_raw_session(spec, root)
        folder = raw.raw_session_dir(spec, root)
        message = str(caught.value)
        assert message.startswith(f"{folder}/gratings/") and "no space left on device" in message
        assert caught.value.exit_code == 144 and ".tmp-" not in message
        assert [p.name for p in folder.parent.iterdir()] == [f".{folder.name}.lock"]
