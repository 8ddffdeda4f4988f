"""Benchmarks: one ``bench_*.py`` module per area, each with ``run() -> list[dict]``."""
