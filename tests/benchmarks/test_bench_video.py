"""The video benchmark's rows from its runs' results (pure; the runs are ``make bench``)."""

from benchmarks.bench_video import video_rows


def result(shape_bacc: float, shape_f1: float, ratio: float = 0.8) -> dict:
    return {
        "optimum_ratio": ratio, "final_metric": 0.74, "optimum": 0.92, "global_step": 300,
        "val_balanced_acc": {"shape": shape_bacc, "motion": 0.95},
        "optimum_balanced_acc": {"shape": 0.916, "motion": 0.95},
        "val_f1": {"shape": shape_f1, "motion": 0.95},
    }  # fmt: skip


def test_rows_compare_each_loss_with_plain_ce_on_the_imbalanced_task():
    runs = {"ce": result(0.4, 0.35), "weighted_ce": result(0.5, 0.45), "focal": result(0.38, 0.4)}
    rows = {row["name"]: row for row in video_rows(runs, 5.0)}
    headline = rows["r3d_small/synthetic_views macro accuracy / optimum (5 CPU-min, ce)"]
    assert (headline["value"], headline["ok"]) == (0.8, False)
    assert rows["  motion balanced accuracy / optimum (ce)"]["ok"] is True
    assert rows["shape (8:1 imbalanced) balanced accuracy, weighted_ce"]["ok"] is True
    assert rows["shape (8:1 imbalanced) balanced accuracy, focal"]["ok"] is False
    assert rows["shape macro F1, focal"]["ok"] is True
    assert rows["shape macro F1, ce"]["ok"] is None  # the baseline itself
