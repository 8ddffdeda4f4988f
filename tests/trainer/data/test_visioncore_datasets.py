"""VisionCore's own dataset configs (copied unchanged, MIT) on raw sessions laid out as
VisionCore expects, end to end: sample shapes, and two training steps through corejob-train.

The sessions are synthetic raw recordings written to ``<data_root>/<session>/`` (where
``corejob-train import-visioncore`` puts imported ones), with units numbered like
VisionCore's: ``robs`` column ``i`` is unit ``i``, and the session file's ``cids`` pick
the columns (and the readout size).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.support.trainer_launch import run_trainer
from tests.trainer.recordings.test_visioncore_import import save_dset
from trainer.configs.dataset_schema import load_dataset_files
from trainer.configs.dataset_schema.synthetic import resolve_params
from trainer.data import MultiDatasetDM, load_dataset_config
from trainer.models.bits_per_spike import oracle_bps
from trainer.recordings.store import open_raw_session, write_raw_session
from trainer.synthetic.raw import RawSessionSpec, simulate_raw_session

CONFIGS = Path(__file__).parent / "visioncore_dataset_configs"
HISTORY = CONFIGS / "multi_basic_120_backimage_history.yaml"
MODEL = Path(__file__).parents[1] / "models" / "visioncore_configs"
HISTORY_MODEL = MODEL / "learned_dense_concat_convgru_gaussian_history.yaml"


def write_visioncore_layout(config: Path, root: Path, n_sessions: int) -> list[int]:
    """Raw sessions for the config's first sessions (its ``types``, 16 px, 400 frames per
    type); returns each session's readout size (its ``cids`` count)."""
    sizes = []
    for entry in load_dataset_files(str(config), max_datasets=n_sessions).sessions:
        cids = entry.fields["cids"]
        params = resolve_params({"preset": "tiny", "n_frames": 400})
        spec = RawSessionSpec(
            entry.name, max(cids) + 1, 5, tuple(entry.fields["types"]), 10, params
        )
        session = simulate_raw_session(spec)
        session = dataclasses.replace(session, cids=np.arange(spec.n_units))  # VisionCore's ids
        write_raw_session(session, root / entry.name)
        sizes.append(len(cids))
    return sizes


@pytest.fixture(scope="module")
def history_data(tmp_path_factory) -> tuple[Path, list[int]]:
    root = tmp_path_factory.mktemp("vc-recorded")
    return root, write_visioncore_layout(HISTORY, root, n_sessions=2)


def test_the_history_config_gives_visioncores_sample_shapes(history_data) -> None:
    root, sizes = history_data
    config = load_dataset_config(str(HISTORY), data_root=root, max_datasets=2)
    dm = MultiDatasetDM(config, batch_size=8)
    dm.setup("fit")
    assert [i.n_units for i in dm.sessions_info] == sizes
    assert {(i.n_lags, i.behavior_dim, i.image_shape) for i in dm.sessions_info} == {
        (33, 42, (16, 16))
    }
    for idx, n in enumerate(sizes):
        sample = dm.train_dataset.datasets[idx][0]
        assert sample["stim"].shape == (1, 33, 16, 16)
        assert sample["behavior"].shape == (42,)
        assert sample["history"].shape == (5, n)
        assert sample["robs"].shape == sample["dfs"].shape == (n,)
    batch = dm.device_batch(next(iter(dm.train_dataloader())))
    assert {g["stim"].dtype for g in batch} == {torch.float32}
    assert {tuple(g["history"].shape[1:]) for g in batch} <= {(5, n) for n in sizes}


@pytest.mark.timeout(900)
def test_corejob_train_trains_two_steps_with_history_and_behaviour(
    history_data, tmp_path, capsys
) -> None:
    root, sizes = history_data
    args = [
        "train", "--model_config", str(HISTORY_MODEL), "--dataset_configs_path", str(HISTORY),
        "--data_root", str(root), "--max_datasets", "1", "--run_dir", str(tmp_path / "run"),
        "--batch_size", "2", "--max_epochs", "1", "--steps_per_epoch", "2",
        "--limit_val_batches", "2", "--num_workers", "0", "--lr_scheduler", "none",
    ]  # fmt: skip
    assert run_trainer(args) == 0, capsys.readouterr().out[-3000:]
    result = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert result["global_step"] == 2 and list(result["val_bps"]) == ["Allen_2022-02-16"]
    checkpoint = torch.load(
        tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False
    )
    history_mlp = [k for k in checkpoint["state_dict"] if "spike_history.0" in k]
    assert history_mlp  # the history encoder exists, sized 5 lags x the session's units
    first = checkpoint["state_dict"]["model.spike_history.0.mlp.0.linear.weight_orig"]
    assert first.shape[-1] == 5 * sizes[0]


def test_an_imported_visioncore_recording_gives_the_same_samples(history_data, tmp_path):
    """VisionCore's files (``<session>/datasets/<type>.dset`` + unit data) through
    ``corejob-train import-visioncore`` give the samples the raw session gives; recorded
    data has no ground truth, so no oracle (the result then has no oracle fields)."""
    root, _ = history_data
    name = "Allen_2022-02-16"
    session = open_raw_session(root / name)
    src = tmp_path / "src"
    for stim_type, recording in session.recordings.items():
        covariates = {k: v for k, v in recording.covariates.items() if k != "rates"}
        covariates["dpi_valid"] = np.asarray(covariates["dpi_valid"], dtype=np.float32)
        save_dset(src / name / "datasets" / f"{stim_type}.dset", covariates, {"name": stim_type})
    np.savez(
        src / name / "units.npz",
        cids=session.cids,
        missing_pct_times=session.missing_pct.times,
        missing_pct=session.missing_pct.pct,
    )
    data = tmp_path / "data"
    assert run_trainer(["import-visioncore", str(src), str(data)]) == 0
    imported = MultiDatasetDM(load_dataset_config(str(HISTORY), data, 1), batch_size=8)
    direct = MultiDatasetDM(load_dataset_config(str(HISTORY), root, 1), batch_size=8)
    for dm in (imported, direct):
        dm.setup("fit")
    got = imported.train_dataset.datasets[0].fetch(np.arange(32))
    want = direct.train_dataset.datasets[0].fetch(np.arange(32))
    assert sorted(got) == ["behavior", "dfs", "history", "robs", "stim"]
    for key in want:
        assert torch.equal(got[key], want[key]), key
    assert oracle_bps(imported) == {} and oracle_bps(direct) != {}
