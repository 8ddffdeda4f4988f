"""Batches on their way to the device: uint8 windows decoded there, sessions held there.

CPU tensors stand in for the device: the code paths are the ones a GPU runs (the same
hooks, the same ``index_select`` gathers, the same decoding arithmetic).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.support.trainer_launch import TINY, run_trainer
from trainer.data import MultiDatasetDM
from trainer.data.transfer import plan_placement, resident_bytes

CPU = torch.device("cpu")


def data_module(config, placement: str, dtype: str = "uint8", batch: int = 48) -> MultiDatasetDM:
    dm = MultiDatasetDM(config, batch_size=batch, dset_dtype=dtype, data_on_device=placement)
    dm.setup("fit")
    dm.place_sessions(CPU)
    return dm


def assert_same_batches(got: list[list[dict]], want: list[list[dict]]) -> None:
    """Bit for bit: same groups, same keys, same dtypes, equal tensors."""
    assert len(got) == len(want) > 0
    for a, b in zip(got, want, strict=True):
        assert [g["dataset_idx"] for g in a] == [g["dataset_idx"] for g in b]
        for ga, gb in zip(a, b, strict=True):
            assert ga.keys() == gb.keys()
            for key in ("stim", "robs", "dfs", "behavior"):
                assert ga[key].dtype == gb[key].dtype, key
                assert torch.equal(ga[key], gb[key]), key


def model_batches(dm: MultiDatasetDM, loader, limit: int | None = None) -> list[list[dict]]:
    """The first ``limit`` batches as the training step receives them."""
    return [
        dm.device_batch(batch)
        for _, batch in zip(range(limit or len(loader)), loader, strict=False)
    ]


def test_uint8_windows_decoded_on_the_device_equal_the_float32_paths(tiny_config):
    """Decoding after the copy changes nothing: equal to decoding on the host (the old
    path) and to reading the derived float32 copy, exactly."""
    u8 = data_module(tiny_config, "never")
    f32 = data_module(tiny_config, "never", dtype="float32")
    loaded = list(u8.val_dataloader())
    assert {g["stim"].dtype for b in loaded for g in b} == {torch.uint8}
    decoded = [u8.device_batch(b) for b in loaded]
    assert {g["stim"].dtype for b in decoded for g in b} == {torch.float32}
    assert_same_batches(decoded, model_batches(f32, f32.val_dataloader()))
    for i, ds in enumerate(u8.val_dataset.datasets):  # decoded on the host instead
        host = u8.codecs[i].decode(ds.fetch(np.arange(len(ds)))["stim"])
        device = torch.cat([g["stim"] for b in decoded for g in b if g["dataset_idx"] == i])
        assert torch.equal(device, host)


@pytest.mark.parametrize("dtype", ["uint8", "bfloat16"])
def test_device_resident_gathering_equals_the_host_path_bit_for_bit(tiny_config, dtype):
    host = data_module(tiny_config, "never", dtype)
    resident = data_module(tiny_config, "always", dtype)
    assert host.resident is None and resident.resident is not None
    for epoch in (0, 1):
        loaders = [host.train_dataloader(), resident.train_dataloader()]
        for loader in loaders:
            loader.sampler.set_epoch(epoch)
        index_batch = next(iter(loaders[1]))
        assert set(index_batch[0]) == {"frames", "dataset_idx"}  # only indices leave the host
        assert_same_batches(
            model_batches(resident, loaders[1], 6), model_batches(host, loaders[0], 6)
        )
    assert_same_batches(
        model_batches(resident, resident.val_dataloader(), 6),
        model_batches(host, host.val_dataloader(), 6),
    )


def test_resident_loader_resumes_mid_epoch_where_the_host_loader_does(tiny_config):
    """The checkpointed ``train_position`` restarts the index loader at the same batch."""
    results = []
    for placement in ("never", "always"):
        dm = data_module(tiny_config, placement, batch=16)
        dm.train_dataloader().record_position(1, 3)
        state = dm.state_dict()
        assert state == {"train_position": [1, 3, 16]}
        resumed = data_module(tiny_config, placement, batch=16)
        resumed.load_state_dict(state)
        loader = resumed.train_dataloader()
        results.append(model_batches(resumed, loader))
        full = resumed.train_dataloader()
        full.sampler.set_epoch(1)
        assert len(results[-1]) == len(list(full)) - 3
    assert_same_batches(results[1], results[0])


def test_sessions_that_do_not_fit_stay_on_the_host_said_once(tiny_config, capsys):
    dm = MultiDatasetDM(tiny_config, batch_size=16, data_on_device="auto")
    dm.setup("fit")
    datasets = dm.train_dataset.datasets
    need = resident_bytes([d.arrays for d in datasets], [d.keys_lags for d in datasets])
    placement = dm.place_sessions(CPU, capacity_bytes=need * 2)  # budget 0.4 x 2 x need
    assert not placement.resident and dm.resident is None
    dm.place_sessions(CPU, capacity_bytes=10 * need)  # decided once: not again
    dm.setup("fit")
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines == [f"data: {placement.reason}"]
    assert "more than" in lines[0] and "--data_on_device_share" in lines[0]
    assert set(next(iter(dm.train_dataloader()))[0]) >= {"stim", "robs"}  # host batches
    fits = MultiDatasetDM(tiny_config, batch_size=16, data_on_device_share=0.5)
    fits.setup("fit")
    assert fits.place_sessions(CPU, capacity_bytes=need * 2).resident
    assert set(next(iter(fits.train_dataloader()))[0]) == {"frames", "dataset_idx"}


def test_placement_decision():
    gpu, gib = torch.device("cuda", 0), 1024**3
    assert plan_placement("auto", gpu, 5 * gib, 141 * gib, 0.4).resident
    big = plan_placement("auto", gpu, 60 * gib, 141 * gib, 0.4)
    assert not big.resident and "60.00 GiB, more than 56.40 GiB = 0.4 x 141.00 GiB" in big.reason
    assert not plan_placement("auto", CPU, 1, None, 0.4).resident  # the host is the device
    assert plan_placement("always", CPU, 60 * gib, None, 0.4).resident
    assert not plan_placement("never", gpu, 1, 141 * gib, 0.4).resident
    with pytest.raises(ValueError, match="'sometimes'"):
        plan_placement("sometimes", gpu, 1, 1, 0.4)


def _trained_weights(tmp_path, tiny_data, placement: str) -> dict[str, torch.Tensor]:
    run_dir = tmp_path / placement
    argv = [*TINY, "--run_dir", str(run_dir), "--data_root", str(tiny_data)]
    argv += ["--max_epochs", "1", "--steps_per_epoch", "3", "--batch_size", "32"]
    argv += ["--limit_val_batches", "1", "--resume", "never", "--data_on_device", placement]
    assert run_trainer(argv) == 0
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    return ckpt["state_dict"]


@pytest.mark.slow
def test_lightning_trains_the_same_weights_from_resident_sessions(tmp_path, tiny_data, capsys):
    """Through Lightning's own hooks (transfer_batch_to_device, on_after_batch_transfer):
    the same seed gives bit-identical weights whichever way the batches were built."""
    host = _trained_weights(tmp_path, tiny_data, "never")
    resident = _trained_weights(tmp_path, tiny_data, "always")
    out = capsys.readouterr().out
    assert "data: sessions stay on the host" in out and "data: sessions held on cpu" in out
    assert host.keys() == resident.keys()
    for key in host:
        assert torch.equal(host[key], resident[key]), key
