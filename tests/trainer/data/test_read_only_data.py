"""A data volume mounted read-only (the chart's ``data.readOnly``), through the real CLI.

Sessions prepared beforehand are used in place; derived arrays the volume lacks (here: for
another ``--dset_dtype``) fail in one line naming ``--derived_dir`` - or, with it, are
derived into that shared folder and trained from.
"""

from __future__ import annotations

import json

from tests.support.trainer_launch import TINY, run_trainer
from tests.support.volumes import read_only_bind
from trainer.contract import exit_codes


def test_read_only_data_trains_with_derived_dir(tiny_data, tmp_path, capsys) -> None:
    shared = tmp_path / "runs" / ".derived"
    with read_only_bind(tiny_data, tmp_path / "ro") as data:
        float32 = ["--dataset_configs_path", "synthetic_tiny", "--dset_dtype", "float32"]
        code = run_trainer(["generate", *float32, "--data_root", str(data)])
        assert code == exit_codes.DATA_ERROR
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "read-only" in err[0] and "--derived_dir" in err[0]
        train = [
            "train", *TINY, "--data_root", str(data), "--derived_dir", str(shared),
            "--dset_dtype", "float32", "--run_dir", str(tmp_path / "run"), "--max_epochs", "1",
            "--steps_per_epoch", "2", "--limit_val_batches", "2", "--batch_size", "8",
        ]  # fmt: skip
        assert run_trainer(train) == 0
    result = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert result["global_step"] == 2
    derived = sorted(p.parent.name for p in shared.glob("*/*/meta.json"))
    assert len(derived) == 2  # one folder per session of synthetic_tiny
