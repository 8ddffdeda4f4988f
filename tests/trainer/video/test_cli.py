"""``python -m trainer.video.train``: the original trainer's command lines, translated to
the one trainer parser; bad values are one line and exit 2 on both entry points."""

from __future__ import annotations

import subprocess
import sys

import pytest

from trainer.cli import parse_args, run_cli
from trainer.contract import exit_codes
from trainer.video.cli import UsageError, video_argv


def parsed(*argv: str):
    args, notes = video_argv(argv)
    return parse_args(args), notes


def test_the_issue_command_line_parses_with_the_family_defaults():
    args, notes = parsed(
        "--dataset_root", "/data", "--epochs", "50", "--batch_size", "16",
        "--gradual_finetuning", "--aggressive_augmentation", "--loss_function", "focal",
    )  # fmt: skip
    assert notes == []
    assert (args.model_config, args.dataset_configs_path) == ("r3d_small", "synthetic_views")
    assert (args.data_root, args.max_epochs, args.batch_size) == ("/data", 50, 16)
    assert args.gradual_finetuning and args.aggressive_augmentation
    assert args.loss_function == "focal"


def test_legacy_names_are_translated_and_what_the_user_typed_wins():
    args, notes = parsed(
        "--lr=0.01", "--num_epochs", "7", "--model", "r3d_18", "--loss", "weighted_ce"
    )
    assert (args.learning_rate, args.max_epochs, args.model_config) == (0.01, 7, "r3d_18")
    assert args.loss_function == "weighted_ce"
    assert "--lr is the legacy name of --learning_rate" in notes


def test_simple_training_mode_is_the_plain_baseline_and_refuses_extras():
    args, _ = parsed("--simple_training")
    assert (args.loss_function, args.augmentation, args.gradual_finetuning) == ("ce", "none", False)
    with pytest.raises(UsageError, match="drop --gradual_finetuning"):
        video_argv(["--simple_training", "--gradual_finetuning"])
    with pytest.raises(UsageError, match="drop --loss_function"):
        video_argv(["--simple_training", "--loss_function=focal"])


def test_bad_values_are_one_line_with_exit_code_2(capsys):
    with pytest.raises(SystemExit) as stop:  # argparse's own exit, code 2
        run_cli(["train", "--model_config", "r3d_small", "--loss_function", "hinge"])
    assert stop.value.code == exit_codes.CONFIG_ERROR
    assert "argument --loss_function: invalid choice: 'hinge'" in capsys.readouterr().err
    code = run_cli(["train", "--model_config", "res_small", "--dataset_configs_path",
                    "synthetic_tiny", "--loss_function", "focal"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == exit_codes.CONFIG_ERROR and len(err.splitlines()) == 1
    assert "--loss_function: set: is a video-family flag" in err
    code = run_cli(["train", "--model_config", "r3d_small", "--dataset_configs_path",
                    "synthetic_tiny"])  # fmt: skip
    assert code == exit_codes.CONFIG_ERROR
    assert (
        "is a v1 dataset but --model_config r3d_small is a video model" in capsys.readouterr().err
    )


def test_the_module_entry_point_exits_2_on_a_bad_value():
    done = subprocess.run(
        [sys.executable, "-m", "trainer.video.train", "--epochs", "0"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == exit_codes.CONFIG_ERROR
    assert done.stderr.strip().endswith("argument --epochs: 0 must be >= 1 (see --help)")


def test_generate_writes_the_clip_cache_once(tmp_path, capsys):
    argv = [
        "generate",
        "--dataset_configs_path",
        "synthetic_views_tiny",
        "--data_root",
        str(tmp_path),
    ]
    assert run_cli(argv) == 0
    written = sorted(p.name for p in (tmp_path / "video").glob("*/*.npz"))
    assert written == ["train.npz", "val.npz"]
    assert "generated synthetic_views_tiny under" in capsys.readouterr().out
