"""How ``trainer.run`` assembles the Lightning trainer (pure parts, no training)."""

from pytorch_lightning.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint

from trainer.callbacks.checkpointing import MidEpochCheckpoint
from trainer.callbacks.heartbeat import EpochHeartbeat
from trainer.cli import parse_args
from trainer.contract.distributed import distributed_layout
from trainer.contract.preemption import SigtermFlag
from trainer.run import build_callbacks, trainer_arguments

KUBEFLOW = {"MASTER_ADDR": "m", "MASTER_PORT": "1234", "WORLD_SIZE": "2", "RANK": "1"}


def test_trainer_arguments_follow_the_layout_and_leave_sharding_to_the_samplers(tmp_path):
    args = parse_args(["--run_dir", str(tmp_path), "--limit_val_batches", "3"])
    kwargs = trainer_arguments(args, distributed_layout(KUBEFLOW, "cpu"), "cpu")
    assert kwargs["use_distributed_sampler"] is False
    assert (kwargs["num_nodes"], kwargs["devices"]) == (2, 1)
    assert kwargs["precision"] == "32-true" and kwargs["limit_val_batches"] == 3
    assert kwargs["enable_progress_bar"] is False  # not a terminal, and not rank 0
    gpu = trainer_arguments(
        parse_args(["--limit_val_batches", "0.5"]), distributed_layout({}, "gpu"), "gpu"
    )
    assert gpu["precision"] == "bf16-mixed" and gpu["limit_val_batches"] == 0.5


def test_callbacks_checkpoint_top_k_by_bits_per_spike_and_last(tmp_path):
    args = parse_args(["--save_top_k", "2", "--early_stopping_patience", "4"])
    callbacks, heartbeat = build_callbacks(args, tmp_path, SigtermFlag())
    kinds = {type(c) for c in callbacks}
    assert {EpochHeartbeat, MidEpochCheckpoint, LearningRateMonitor, EarlyStopping} <= kinds
    (checkpoint,) = [c for c in callbacks if isinstance(c, ModelCheckpoint)]
    assert (checkpoint.monitor, checkpoint.mode, checkpoint.save_top_k) == (
        "val_bps_overall",
        "max",
        2,
    )
    assert checkpoint.save_last and heartbeat in callbacks


def test_without_validation_only_last_ckpt_is_kept_and_no_early_stopping(tmp_path):
    args = parse_args(["--limit_val_batches", "0", "--early_stopping_patience", "4"])
    callbacks, _ = build_callbacks(args, tmp_path, SigtermFlag())
    (checkpoint,) = [c for c in callbacks if isinstance(c, ModelCheckpoint)]
    assert checkpoint.monitor is None and checkpoint.save_top_k == 0 and checkpoint.save_last
    assert not any(isinstance(c, EarlyStopping) for c in callbacks)
