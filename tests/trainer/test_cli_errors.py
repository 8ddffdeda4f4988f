"""User errors end as one stderr line and a permanent exit code (no traceback)."""

import json
import signal
import subprocess
import sys

import pytest

from trainer.cli import parse_args, run_cli
from trainer.contract import exit_codes
from trainer.contract.result import RESULT_RECORD_FILE, parse_result_record


def _run(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "trainer", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_unknown_model_exits_2_with_one_line_naming_the_known_models(tmp_path):
    done = _run("--model_config", "res_huge", "--run_dir", str(tmp_path / "run"), cwd=tmp_path)
    assert done.returncode == exit_codes.CONFIG_ERROR
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "--model_config" in lines[0] and "res_huge" in lines[0] and "res_small" in lines[0]
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "run").exists()  # failed before touching the run directory


def test_bad_yaml_field_in_a_model_file_names_the_file_and_key(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\nconvnet:\n  type: resnet\n  params:\n    widht: 3\n")
    done = _run("train", "--model_config", str(path), cwd=tmp_path)
    assert done.returncode == exit_codes.CONFIG_ERROR
    assert str(path) in done.stderr and "widht" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.fixture
def restore_sigterm():
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


def test_unknown_dataset_and_resume_path_are_config_errors(tmp_path, capsys, restore_sigterm):
    code = run_cli(["--dataset_configs_path", "no_such_dataset", "--run_dir", str(tmp_path)])
    assert code == exit_codes.CONFIG_ERROR
    err = capsys.readouterr().err.strip()
    assert "no_such_dataset" in err and "synthetic_tiny" in err and "\n" not in err
    code = run_cli(["--dataset_configs_path", "synthetic_tiny", "--resume", "/nope.ckpt"])
    assert code == exit_codes.CONFIG_ERROR
    assert "/nope.ckpt" in capsys.readouterr().err


def test_usage_errors_are_one_line_with_exit_2(capsys):
    with pytest.raises(SystemExit) as caught:
        parse_args(["--lr_scheduler", "linear"])
    assert caught.value.code == exit_codes.CONFIG_ERROR
    err = capsys.readouterr().err.strip()
    assert "--lr_scheduler" in err and "cosine" in err and "\n" not in err


def test_train_is_the_default_subcommand_and_seed_names_parse():
    args = parse_args(["--model_config", "res_small", "--core_lr_scale", "0.5", "--compile"])
    assert args.command == "train" and args.core_lr_scale == 0.5 and args.compile
    assert args.resume == "auto" and args.ddp_timeout_s == 600
    assert parse_args(["generate", "--data_root", "/d"]).command == "generate"


def test_lightning_sigterm_exit_is_reported_as_preemption(monkeypatch, capsys, restore_sigterm):
    from pytorch_lightning.utilities.exceptions import SIGTERMException

    def lightning_stops(*_):
        raise SIGTERMException

    monkeypatch.setattr("trainer.cli._dispatch", lightning_stops)
    assert run_cli(["--run_dir", "x"]) == exit_codes.PREEMPTED
    assert "preempted" in capsys.readouterr().err


def test_an_unusable_data_root_exits_2_naming_the_flag(tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    for data_root, problem in (("/proc/nope", "cannot be created"), (not_a_dir, "not a directory")):
        done = _run(*TRAIN, "--data_root", str(data_root), "--run_dir", "run", cwd=tmp_path)
        assert done.returncode == exit_codes.CONFIG_ERROR, done.stderr
        (line,) = [line for line in done.stderr.splitlines() if line.startswith("corejob-train")]
        assert f"--data_root: {data_root}: " in line and problem in line
        assert "Traceback" not in done.stderr


TRAIN = ("train", "--model_config", "res_small", "--dataset_configs_path", "synthetic_tiny")


def test_a_run_that_fails_leaves_its_record_in_its_run_directory(tmp_path, restore_sigterm):
    """On a cluster the run directory is on the checkpoints claim: the record says why the
    run failed after the job is gone (a retryable exit: Restarting, replaced by the next)."""
    run = tmp_path / "run"
    run.mkdir()  # an attempt ran here before
    env = {"COREJOB_JOB_NAME": "res-small-tiny-1", "COREJOB_MODEL": "res_small",
           "COREJOB_DATASET": "synthetic_tiny", "COREJOB_SWEEP": "daily"}  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        code = run_cli(["--run_dir", str(run), "--resume", "/nope.ckpt"])
    assert code == exit_codes.CONFIG_ERROR
    job, result = parse_result_record(json.loads((run / RESULT_RECORD_FILE).read_text()))
    assert result is None and job["metadata"]["name"] == "res-small-tiny-1"
    assert job["metadata"]["labels"]["corejob.dev/sweep"] == "daily"
    (condition,) = job["status"]["conditions"]
    assert condition["type"] == "Failed" and condition["message"].startswith(
        "exit code 2: ConfigError: "
    )
    assert "/nope.ckpt" in condition["message"]
