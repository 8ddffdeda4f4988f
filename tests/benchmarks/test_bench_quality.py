"""The quality benchmark's judgement of two runs' results (no training here)."""

from benchmarks.bench_quality import quality_rows, single_session_config
from trainer.data.config import load_dataset_config


def result(overall, per_session, best=None, cpu=290.0):
    return {"oracle_ratio_overall": overall, "final_val_bps_overall": 1.0,
            "oracle_bps_overall": 1.2, "oracle_ratio": per_session,
            "val_bps": {"mixed_back_few": 0.9}, "best_val_bps": {"mixed_back_few": best or 0.9},
            "cpu_s": cpu}  # fmt: skip


def test_rows_judge_ratio_cpu_and_shared_core():
    joint = result(0.92, {"a": 0.95, "b": 0.85})
    alone = result(0.6, {"mixed_back_few": 0.6}, best=0.95)
    alone["val_bps"] = {"mixed_back_few": 0.7}
    rows = {r["name"].strip(): r for r in quality_rows(joint, alone, 5.0)}
    assert rows["res_small/synthetic_mixed val_bps_overall / oracle (5 CPU-min)"]["ok"] is True
    assert rows["a / oracle"]["ok"] is True and rows["b / oracle"]["ok"] is False
    assert rows["quality run CPU time"]["ok"] is True
    assert rows["mixed_back_few bps (final), trained jointly"]["ok"] is True
    assert rows["mixed_back_few bps (best epoch), trained jointly"]["ok"] is False


def test_single_session_config_reuses_the_parent_sessions(tmp_path):
    path = single_session_config("synthetic_mixed", "mixed_back_few", tmp_path)
    one = load_dataset_config(path, data_root=tmp_path)
    full = load_dataset_config("synthetic_mixed", data_root=tmp_path)
    assert [s.name for s in one.sessions] == ["mixed_back_few"]
    assert one.raw_session_dir(one.sessions[0]) == full.raw_session_dir(full.sessions[-1])
