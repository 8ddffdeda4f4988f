"""W&B: mode decisions (pure) and a real offline run with no key and no network."""

import os
from pathlib import Path

import pytest

from trainer.callbacks.wandb_logger import (
    has_api_key,
    make_wandb_logger,
    resolve_mode,
    resolve_settings,
)
from trainer.contract.errors import ConfigError


def test_mode_resolution_table(tmp_path):
    assert resolve_mode(None, {}, key_present=False)[0] == "offline"
    assert resolve_mode(None, {}, key_present=True)[0] == "online"
    assert resolve_mode("online", {}, key_present=False)[0] == "offline"  # no key: never online
    assert resolve_mode("disabled", {"WANDB_MODE": "online"}, key_present=True)[0] == "disabled"
    assert resolve_mode(None, {"WANDB_MODE": "disabled"}, key_present=True)[0] == "disabled"
    assert resolve_mode(None, {"WANDB_MODE": "dryrun"}, key_present=True)[0] == "offline"
    with pytest.raises(ConfigError, match="WANDB_MODE"):
        resolve_mode(None, {"WANDB_MODE": "sometimes"}, key_present=False)


def test_api_key_from_env_or_netrc(tmp_path):
    assert has_api_key({"WANDB_API_KEY": "abc"})
    assert not has_api_key({"HOME": str(tmp_path)})
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine api.wandb.ai\n  login user\n  password secret\n")
    netrc.chmod(0o600)
    assert has_api_key({"HOME": str(tmp_path)})


def test_settings_from_cli_then_env():
    env = {
        "WANDB_PROJECT": "envproj",
        "WANDB_ENTITY": "lab",
        "COREJOB_SWEEP": "s1",
        "COREJOB_JOB_NAME": "job-7",
    }
    cli = {"wandb": "offline", "model": "res_small", "dataset": "synthetic_mixed"}
    s = resolve_settings(cli, env, key_present=False)
    assert (s.project, s.entity, s.name) == ("envproj", "lab", "job-7")
    assert s.tags == ("model:res_small", "dataset:synthetic_mixed", "sweep:s1")
    s = resolve_settings({**cli, "wandb_project": "cliproj", "wandb_run_name": "r"}, env, False)
    assert (s.project, s.name) == ("cliproj", "r")


def test_rank_nonzero_and_disabled_get_no_logger(tmp_path):
    settings = resolve_settings({"wandb": "offline"}, {}, key_present=False)
    assert make_wandb_logger(settings, tmp_path, global_rank=1) is None
    disabled = resolve_settings({"wandb": "disabled"}, {}, key_present=False)
    assert make_wandb_logger(disabled, tmp_path, global_rank=0) is None


@pytest.mark.slow
def test_offline_run_directory_created_without_key_or_network(tmp_path, monkeypatch, capfd):
    for var in ("WANDB_API_KEY", "WANDB_MODE", "NETRC"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # would fail fast if used
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "volume"))  # the chart's: on /runs
    settings = resolve_settings({"model": "m", "dataset": "d"}, dict(os.environ))
    assert settings.mode == "offline"
    logger = make_wandb_logger(settings, tmp_path / "run", global_rank=0, config={"lr": 0.1})
    logger.log_metrics({"val_bps_overall": 0.5}, step=1)
    logger.experiment.finish()
    runs = list(Path(tmp_path / "volume" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and any(runs[0].glob("*.wandb"))
    assert "anonymous" not in capfd.readouterr().err  # no wandb warning about Lightning's None
