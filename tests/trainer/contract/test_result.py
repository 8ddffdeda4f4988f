"""Result object, result line, resume resolution, SIGTERM flag (pure parts of the runtime)."""

import json
import math
import signal

import pytest
import torch

from trainer.checkpoints import check_resume_compatible
from trainer.contract.errors import ConfigError
from trainer.contract.preemption import Preempted, SigtermFlag
from trainer.contract.result import (
    RESULT_LINE_PREFIX,
    build_result,
    clean_history,
    config_label,
    parse_result_line,
    result_line,
)

HISTORY = [
    {"epoch": 0, "val_bps_overall": 0.10, "val_bps/a": 0.05, "val_bps/b": 0.15},
    {"epoch": 1, "val_bps_overall": 0.30, "val_bps/a": 0.20, "val_bps/b": 0.40},
    {"epoch": 2, "val_bps_overall": 0.25, "val_bps/a": 0.30, "val_bps/b": float("nan")},
]


def test_the_last_well_formed_result_line_is_the_result():
    lines = [
        "COREJOB_EPOCH epoch=1/2",
        f'{RESULT_LINE_PREFIX}{{"best_val_bps_overall": 0.1}}',
        f'  {RESULT_LINE_PREFIX}{{"best_val_bps_overall": 0.2}}',  # kubectl's padding
        f"Traceback: {RESULT_LINE_PREFIX}{{}}",  # quoted, not printed by the trainer
    ]
    assert parse_result_line(lines) == {"best_val_bps_overall": 0.2}
    assert parse_result_line([*lines, f"{RESULT_LINE_PREFIX}{{truncated"]) is None
    assert parse_result_line([f"{RESULT_LINE_PREFIX}[1]"]) is None
    assert parse_result_line([]) is None


def test_best_and_final_bits_per_spike_come_from_the_history():
    result = build_result(
        history=HISTORY,
        sessions=["a", "b"],
        run={"model": "m", "dataset": "d", "global_step": 30, "world_size": 2},
        oracle={"a": 0.5, "b": 1.0},
    )
    assert result["best_val_bps_overall"] == 0.30 and result["best_epoch"] == 2
    assert result["final_val_bps_overall"] == 0.25 and result["epochs"] == 3
    assert result["best_val_bps"] == {"a": 0.20, "b": 0.40}
    assert result["val_bps"] == {"a": 0.30, "b": None}  # NaN is not JSON
    assert result["oracle_bps_overall"] == 0.75
    assert result["oracle_ratio"] == {"a": pytest.approx(0.6), "b": None}
    assert result["oracle_ratio_overall"] is None  # one session has no final value
    assert (result["global_step"], result["world_size"]) == (30, 2)


def test_result_line_is_one_line_of_strict_json():
    result = build_result(history=HISTORY[:2], sessions=["a", "b"], run={"model": "m"})
    line = result_line(result)
    assert line.startswith(RESULT_LINE_PREFIX) and "\n" not in line
    parsed = json.loads(line.removeprefix(RESULT_LINE_PREFIX))
    assert parsed["best_val_bps_overall"] == 0.30 and parsed["model"] == "m"
    assert "oracle_bps" not in parsed


def test_a_run_without_validation_reports_nulls():
    result = build_result(history=[], sessions=["a"], run={})
    assert result["best_val_bps_overall"] is None and result["epochs"] == 0
    assert json.loads(result_line(result).removeprefix(RESULT_LINE_PREFIX))["val_bps"] == {
        "a": None
    }


def test_clean_history_replaces_non_finite_numbers():
    cleaned = clean_history(HISTORY)
    assert cleaned[2]["val_bps/b"] is None
    assert not any(isinstance(v, float) and math.isnan(v) for r in cleaned for v in r.values())


def test_config_labels_are_names_or_file_stems():
    assert config_label("synthetic_tiny") == "synthetic_tiny"
    assert config_label("/cfg/my_model.yaml") == "my_model"


def test_sigterm_flag_raises_outside_training_and_only_records_inside():
    flag = SigtermFlag()
    flag.armed = True
    flag.handle(signal.SIGTERM, None)
    assert flag.received
    flag = SigtermFlag()
    with pytest.raises(Preempted) as caught:
        flag.handle(signal.SIGTERM, None)
    assert caught.value.exit_code == 143
    flag.handle(signal.SIGTERM, None)  # a second signal during shutdown is ignored


def test_resuming_a_checkpoint_of_another_model_is_a_config_error(tmp_path):
    ckpt = tmp_path / "last.ckpt"
    torch.save({"corejob": {"model_config": {"name": "res_small", "width": 8}}}, ckpt)
    check_resume_compatible(ckpt, {"name": "res_small", "width": 8})
    with pytest.raises(ConfigError, match=r"res_small_gru.*--resume never") as caught:
        check_resume_compatible(ckpt, {"name": "res_small_gru", "width": 8})
    assert str(ckpt) in str(caught.value)
