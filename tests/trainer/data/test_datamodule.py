"""MultiDatasetDM on synthetic_tiny (raw 240 Hz sessions, derived at 120 Hz by its config):
splits, batches in VisionCore's lag order, dtypes, oracle, workers."""

from __future__ import annotations

import pickle
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from trainer.contract.errors import ConfigError
from trainer.data import MultiDatasetDM
from trainer.data.derived.samples import sample_bins
from trainer.data.derived.storage import codec_of
from trainer.models.bits_per_spike import bps_sufficient_stats, mean_bps, oracle_bps


def test_sessions_info_matches_config_and_data(tiny_dm, tiny_config):
    infos = tiny_dm.sessions_info
    assert [i.name for i in infos] == [s.name for s in tiny_config.sessions]
    assert [i.n_units for i in infos] == [s.synthetic["n_units"] for s in tiny_config.sessions]
    assert [i.stim_type for i in infos] == ["backimage", "gaborium"]
    for info, ds in zip(infos, tiny_dm.train_dataset.datasets, strict=True):
        # behaviour: eye velocity through a 3-function basis, split (12), + eye position (2)
        assert (info.n_lags, info.image_shape, info.behavior_dim) == (6, (16, 16), 14)
        robs = np.asarray(ds.arrays.array("robs"))[ds.frames]
        dfs = np.asarray(ds.arrays.array("dfs"))[ds.frames]
        expected = (robs * dfs).sum(0) / dfs.sum(0)
        np.testing.assert_allclose(info.mean_rates, expected, rtol=1e-6)


def test_split_is_by_whole_trials_and_windows_stay_in_trials(tiny_dm):
    for train, val in zip(
        tiny_dm.train_dataset.datasets, tiny_dm.val_dataset.datasets, strict=True
    ):
        trials = np.asarray(train.arrays.array("trial_ids"))
        train_trials, val_trials = set(trials[train.frames]), set(trials[val.frames])
        assert train_trials and val_trials and not train_trials & val_trials
        assert 0.65 < len(train_trials) / (len(train_trials) + len(val_trials)) < 0.95
        for ds in (train, val):
            assert (trials[ds.frames - 5] == trials[ds.frames]).all()
            assert np.asarray(ds.arrays.array("dfs"))[ds.frames].any(axis=1).all()
        everything = np.sort(np.concatenate([train.frames, val.frames]))
        np.testing.assert_array_equal(everything, sample_bins(trials, train.arrays.array("dfs"), 5))


def test_batches_have_the_contract_shapes_and_lag_order(tiny_dm):
    loaded = next(iter(tiny_dm.train_dataloader()))
    assert {g["stim"].dtype for g in loaded} == {torch.uint8}  # storage bytes to the device
    assert {g["dfs"].dtype for g in loaded} == {torch.uint8}
    batch = tiny_dm.device_batch(loaded)  # what the training step receives
    assert sorted(g["dataset_idx"] for g in batch) == [0, 1]
    assert sum(g["stim"].shape[0] for g in batch) == 64
    for group in batch:
        n = tiny_dm.sessions_info[group["dataset_idx"]].n_units
        b = group["stim"].shape[0]
        assert group["stim"].shape == (b, 1, 6, 16, 16) and group["stim"].dtype == torch.float32
        assert group["robs"].shape == group["dfs"].shape == (b, n)
        assert group["behavior"].shape == (b, 14)
        low, high = (0 - 127) / 255, (255 - 127) / 255  # pixelnorm of uint8 pixels
        assert group["stim"].min() >= low - 1e-6 and group["stim"].max() <= high + 1e-6
    ds = tiny_dm.val_dataset.datasets[0]
    one = ds[3]
    stim_u8 = np.asarray(ds.arrays.array("stim"))
    t = ds.frames[3]
    newest_first = stim_u8[t - np.arange(6)]  # VisionCore's order: index 0 = the current bin
    np.testing.assert_array_equal(one["stim"][0].numpy(), newest_first)
    expected = (newest_first.astype(np.float32) - 127) / 255  # pixelnorm
    decoded = codec_of(ds.arrays.meta["stim"]).decode(one["stim"][0])
    np.testing.assert_allclose(decoded.numpy(), expected, atol=1e-6)
    np.testing.assert_array_equal(one["robs"].numpy(), np.asarray(ds.arrays.array("robs"))[t])


def val_stims(dm):
    batches = [dm.device_batch(b) for b in dm.val_dataloader()]
    return torch.cat([g["stim"] for b in batches for g in b if g["dataset_idx"] == 0])


def test_storage_dtypes_cast_to_the_same_floats(tiny_config, tiny_dm):
    reference = val_stims(tiny_dm)
    for dtype, tol in [("float32", 1e-6), ("bfloat16", 1e-2)]:
        dm = MultiDatasetDM(tiny_config, batch_size=64, dset_dtype=dtype)
        dm.setup("fit")
        stim = val_stims(dm)
        assert stim.dtype == torch.float32
        torch.testing.assert_close(stim, reference, atol=tol, rtol=0)
    with pytest.raises(ConfigError, match="dset_dtype"):
        MultiDatasetDM(tiny_config, batch_size=8, dset_dtype="float16")


def test_oracle_beats_null_and_shuffled_rates_do_not(tiny_dm):
    oracle = oracle_bps(tiny_dm)
    assert set(oracle) == {i.name for i in tiny_dm.sessions_info}
    assert all(v > 0.2 for v in oracle.values())
    rng = np.random.default_rng(0)
    for ds, info in zip(tiny_dm.val_dataset.datasets, tiny_dm.sessions_info, strict=True):
        robs = torch.from_numpy(np.asarray(ds.arrays.array("robs"))[ds.frames])
        dfs = torch.from_numpy(np.asarray(ds.arrays.array("dfs"))[ds.frames]).float()
        rates = np.asarray(ds.arrays.array("rates"))[ds.frames]
        null = torch.tensor(info.mean_rates, dtype=torch.float32)
        mean_model = null.expand_as(robs)
        shuffled = torch.from_numpy(rates[rng.permutation(len(rates))])
        true = torch.from_numpy(rates)
        assert mean_bps(bps_sufficient_stats(mean_model, robs, dfs, null)) == pytest.approx(0.0)
        assert mean_bps(bps_sufficient_stats(shuffled, robs, dfs, null)) < 0.0
        assert mean_bps(bps_sufficient_stats(true, robs, dfs, null)) == pytest.approx(
            oracle[info.name]
        )


def test_loaders_shard_by_the_attached_trainers_rank(tiny_dm, tiny_config):
    dm = MultiDatasetDM(tiny_config, batch_size=16)
    dm.setup("fit")
    counts = []
    for rank in (0, 1):
        dm.trainer = SimpleNamespace(global_rank=rank, world_size=2)
        counts.append(sum(g["stim"].shape[0] for b in dm.val_dataloader() for g in b))
        assert len(dm.train_dataloader()) == len(dm.train_dataset) // 32
    assert sum(counts) == len(dm.val_dataset)


def test_workers_read_the_memory_maps(tiny_config):
    dm = MultiDatasetDM(tiny_config, batch_size=50, num_workers=2)
    dm.setup("fit")
    assert len(pickle.dumps(dm.train_dataset)) < 200_000  # paths and indices, no arrays
    serial = MultiDatasetDM(tiny_config, batch_size=50)
    serial.setup("fit")
    got = [g["robs"] for b in dm.val_dataloader() for g in b]
    want = [g["robs"] for b in serial.val_dataloader() for g in b]
    assert len(got) == len(want) > 2
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)
    assert sum(1 for _ in dm.train_dataloader()) == len(dm.train_dataset) // 50


def test_contrast_scores_line_up_with_samples(tiny_dm):
    scores = tiny_dm.train_dataset.contrast()
    assert scores.shape == (len(tiny_dm.train_dataset),)
    ds = tiny_dm.train_dataset.datasets[1]
    per_frame = np.asarray(ds.arrays.array("contrast"))
    offset = len(tiny_dm.train_dataset.datasets[0])
    for i, t in enumerate(ds.frames[:5]):  # the mean over the sample's stimulus lags
        assert scores[offset + i] == pytest.approx(per_frame[t - np.arange(6)].mean(), rel=1e-6)
    loader = tiny_dm.train_dataloader()
    assert tiny_dm.train_sampler is loader.sampler  # curriculum code finds it here
