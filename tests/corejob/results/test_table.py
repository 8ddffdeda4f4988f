"""The results table builder and its data formats: pure functions of result rows."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import yaml

from corejob.results.collect import ResultRow, row_from_job
from corejob.results.output import to_json, to_yaml, write_csv
from corejob.results.table import (
    NO_RESULT,
    UNDER_TRAINED,
    build_table,
    duration,
    fixed,
    model_means,
    render_text,
)

TRAINED = ResultRow(
    job="res-small-mixed-a", model="res_small", dataset="synthetic_mixed", sweep="s1",
    state="Succeeded", created="2025-01-01T10:00:00Z", best_val_bps=0.6059,
    final_val_bps=0.6011, oracle_bps=0.8123, oracle_ratio=0.74, epochs=20, global_step=2000,
    wall_time_s=302.4, attempts=1, result={"global_step": 2000},
)  # fmt: skip
# The case: a second run of the same cell, 40 steps long, finished later.
SHORT = replace(TRAINED, job="res-small-mixed-b", created="2025-01-02T10:00:00Z",
                best_val_bps=0.0209, final_val_bps=-0.00004, oracle_ratio=-0.00004,
                epochs=1, global_step=40, wall_time_s=31.0)  # fmt: skip
FAILED = ResultRow(job="res-small-tiny-c", model="res_small", dataset="synthetic_tiny",
                   sweep="s1", state="Failed", created="2025-01-01T11:00:00Z",
                   message="BackoffLimitExceeded: master-0 exited with code 1")  # fmt: skip
GRU_TINY = replace(TRAINED, job="gru-tiny-d", model="res_gru", dataset="synthetic_tiny",
                   best_val_bps=0.3, oracle_bps=None, oracle_ratio=None)  # fmt: skip
GRU_MIXED = replace(TRAINED, job="gru-mixed-e", model="res_gru", best_val_bps=0.5)


def lines_of(text: str) -> tuple[list[str], list[str]]:
    """(header + rows, legend) of ``render_text``'s output."""
    table, _, legend = text.partition("\n\n")
    return table.splitlines(), legend.splitlines()


def column(table: list[str], header: str, row: int) -> str:
    """The text under ``header`` in data row ``row`` (columns are 2-space separated)."""
    start = table[0].index(header)
    end = start + len(header)
    line = table[row + 1]
    while start > 0 and line[start - 1] != " ":  # a right-aligned cell wider than its header
        start -= 1
    while end < len(line) and line[end] != " ":
        end += 1
    return line[start:end].strip()


def test_the_header_names_the_metric_and_every_column():
    table, legend = lines_of(render_text(build_table([TRAINED])))
    assert table[0].split("  ")[0] == "model"
    for header in ("best val bits/spike", "final", "oracle", "ratio", "epochs", "steps", "wall",
                   "attempts", "state", "runs", "flags", "job"):  # fmt: skip
        assert header in table[0], header
    assert column(table, "best val bits/spike", 0) == "0.6059"
    assert column(table, "final", 0) == "0.6011"
    assert column(table, "oracle", 0) == "0.8123"
    assert column(table, "ratio", 0) == "0.740"
    assert column(table, "steps", 0) == "2000"
    assert column(table, "wall", 0) == "5m02s"
    assert column(table, "state", 0) == "Succeeded"
    assert legend[0].startswith("best / final val bits/spike: validation bits per spike")
    assert any(line.startswith("oracle: the ground-truth model's") for line in legend)


def test_oracle_and_ratio_columns_only_where_the_data_has_an_oracle():
    table, legend = lines_of(render_text(build_table([GRU_TINY])))
    assert "oracle" not in table[0] and "ratio" not in table[0]
    assert not any(line.startswith("oracle:") for line in legend)


def test_repeated_runs_of_a_cell_show_the_latest_and_the_count():
    table, legend = lines_of(render_text(build_table([SHORT, TRAINED])))
    assert len(table) == 2  # one cell, one row
    assert column(table, "job", 0) == SHORT.job  # the newer run, whatever the input order
    assert column(table, "runs", 0) == "2"
    assert any("latest finished run is shown (--all" in line for line in legend)

    every = build_table([SHORT, TRAINED], all_runs=True)
    assert [(e.row.job, e.runs) for e in every] == [(TRAINED.job, 2), (SHORT.job, 2)]


def test_a_finished_run_wins_over_a_newer_one_still_running():
    running = replace(TRAINED, job="res-small-mixed-z", state="Running",
                      created="2025-02-01T00:00:00Z", best_val_bps=None, result={})  # fmt: skip
    (entry,) = build_table([TRAINED, running])
    assert (entry.row.job, entry.runs) == (TRAINED.job, 2)


def test_under_trained_runs_are_flagged_explained_and_left_out_of_the_mean():
    entries = build_table([SHORT, GRU_MIXED, GRU_TINY, FAILED])
    table, legend = lines_of(render_text(entries, min_steps=100))
    short_row = next(i for i, e in enumerate(entries) if e.row.job == SHORT.job)
    assert column(table, "flags", short_row) == UNDER_TRAINED
    explained = f"flags: {UNDER_TRAINED} = fewer than 100 training steps"
    assert any(line.startswith(explained) for line in legend)
    assert model_means(entries) == {"res_gru": (0.4, 2, 2), "res_small": (None, 0, 2)}
    assert legend[-1].endswith("res_gru 0.4000 (2 of 2 cells), res_small - (0 of 2 cells)")
    assert build_table([SHORT], min_steps=40)[0].flags == ()  # the threshold is the option's


def test_failed_cells_are_rows_with_their_state_and_reason():
    entries = build_table([FAILED, TRAINED])
    table, legend = lines_of(render_text(entries))
    failed_row = next(i for i, e in enumerate(entries) if e.row.job == FAILED.job)
    assert column(table, "state", failed_row) == "Failed"
    assert column(table, "best val bits/spike", failed_row) == "-"
    assert f"failed: {FAILED.job}: BackoffLimitExceeded: master-0 exited with code 1" in legend
    assert not next(e for e in entries if e.row.job == FAILED.job).counted


def test_a_succeeded_job_without_a_result_line_is_flagged():
    job = {"metadata": {"name": "quiet", "labels": {"corejob.dev/model": "m",
           "corejob.dev/dataset": "d"}}, "status": {"conditions": [
           {"type": "Succeeded", "status": "True"}]}}  # fmt: skip
    (entry,) = build_table([row_from_job(job, None)])
    assert entry.flags == (NO_RESULT,) and not entry.counted


def test_numbers_never_print_a_negative_zero():
    assert fixed(-0.00004) == "0.0000" and fixed(-0.00004, 3) == "0.000"
    assert fixed(-0.0012, 3) == "-0.001" and fixed(None) == "-"
    text = render_text(build_table([SHORT]))
    assert "-0.0" not in text
    assert (duration(59.4), duration(3725), duration(None)) == ("59s", "1h02m", "-")


def test_json_yaml_and_csv_carry_the_table_s_entries(tmp_path: Path):
    entries = build_table([SHORT, TRAINED, FAILED], min_steps=100)
    records = json.loads(to_json(entries))
    assert records == yaml.safe_load(to_yaml(entries))
    assert [(r["job"], r["runs"], r["flags"], r["state"]) for r in records] == [
        (SHORT.job, 2, [UNDER_TRAINED], "Succeeded"),
        (FAILED.job, 1, [], "Failed"),
    ]
    assert records[0]["best_val_bps"] == 0.0209 and records[0]["oracle_bps"] == 0.8123
    write_csv(entries, tmp_path / "r.csv")
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert [(r["job"], r["flags"], r["best_val_bps"]) for r in rows] == [
        (SHORT.job, UNDER_TRAINED, "0.0209"),
        (FAILED.job, "", ""),
    ]


def test_one_run_against_one_is_compared_with_the_newest_and_all_lists_oldest_first():
    wall = {"time_budget_minutes": 1.0, "time_budget_clock": "wall", "cores": 2}
    older = replace(TRAINED, result={"global_step": 2000, "training_limits": wall})
    newer = replace(SHORT, global_step=2000, result={
        "global_step": 2000, "training_limits": dict(wall, time_budget_minutes=0.5,
                                                     time_budget_clock="cpu")})  # fmt: skip
    running = replace(TRAINED, job="res-small-mixed-z", created="2025-01-03T10:00:00Z",
                      state="Running", best_val_bps=None, result={})  # fmt: skip
    entries = build_table([newer, running, older], all_runs=True)
    assert [e.row.job for e in entries] == [older.job, newer.job, running.job]  # by creation
    assert entries[0].reasons == {"not-comparable": "time budget (min) 1.0, budget clock wall "
                                  "(the newest run: 0.5, cpu)"}  # fmt: skip
    assert entries[1].flags == () and entries[2].flags == ()
    _, legend = lines_of(render_text(entries, all_runs=True))
    assert legend[-2].startswith("flags: not-comparable = trained under other limits than the "
                                 "newest run of this table (time budget (min) 0.5,")  # fmt: skip
