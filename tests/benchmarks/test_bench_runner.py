"""``python -m benchmarks``: discovery, --only, the table."""

import pytest

from benchmarks.__main__ import discover, format_table, select


def test_every_bench_module_is_discovered_and_only_selects_one():
    modules = discover()
    assert "bench_trainer" in modules and all(m.startswith("bench_") for m in modules)
    assert select(modules, "trainer") == ["bench_trainer"]
    assert select(modules, "bench_trainer") == ["bench_trainer"]
    assert select(modules, None) == modules
    with pytest.raises(SystemExit, match=r"known: .*bench_trainer"):
        select(modules, "nope")


def test_table_has_a_row_per_result_and_aligned_columns():
    rows = [
        {"module": "bench_x", "name": "ratio", "value": 1.23456, "unit": "x", "target": "<= 2"},
        {"module": "bench_x", "name": "crashed", "ok": False},
    ]
    lines = format_table(rows).splitlines()
    assert len(lines) == 4 and lines[0].split()[:3] == ["module", "name", "value"]
    assert "1.235" in lines[2] and lines[3].split()[-1] == "False"
    assert lines[0].index("value") == lines[2].index("1.235")  # columns line up
