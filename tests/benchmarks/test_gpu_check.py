"""``make gpu-check`` before it meets a GPU: its cases, its flags, and a CPU dry run."""

from __future__ import annotations

import json

import pytest

from benchmarks import gpu_check
from trainer.cli import parse_args


def test_cases_cover_host_vs_resident_then_compiled_last():
    cases = gpu_check.cases()
    assert {(c.model, c.placement) for c in cases if not c.compiled} == {
        (m, p) for m in gpu_check.MODELS for p in ("never", "always")
    }
    compiled = [c for c in cases if c.compiled]
    assert [c.model for c in compiled] == list(gpu_check.MODELS)
    assert cases[-len(compiled) :] == compiled  # a spent budget drops compilation first


def test_full_settings_are_trainer_flags_it_accepts():
    full = gpu_check.FULL
    assert (full.batch, full.precision, full.dataset) == (256, "bf16-mixed", "synthetic_realistic")
    for case in gpu_check.cases():
        args = parse_args(gpu_check.train_argv(full, case.model, case.placement))
        assert (args.batch_size, args.precision, args.accelerator) == (256, "bf16-mixed", "gpu")
        assert args.data_on_device == case.placement


@pytest.mark.slow
def test_dry_run_on_the_cpu_writes_the_json_and_table(tmp_path, tiny_data, capsys):
    argv = ["--dry-run", "--out_dir", str(tmp_path), "--data_root", str(tiny_data)]
    assert gpu_check.main([*argv, "--models", "res_small"]) == 0
    (result,) = tmp_path.glob("gpu-*.json")
    report = json.loads(result.read_text())
    assert [(c["data"], c["compiled"], c["status"]) for c in report["cases"]] == [
        ("host", False, "ok"),
        ("resident", False, "ok"),
        ("resident", True, "ok"),
    ]
    assert all(c["steps_per_s"] > 0 and c["samples_per_s"] > 0 for c in report["cases"])
    assert report["cases"][1]["placement"].startswith("sessions held on cpu")
    ddp = report["ddp_smoke"]  # a child process with the pod's variables, under DDP
    assert (ddp["status"], ddp["backend"], ddp["world_size"]) == ("ok", "gloo", 1)
    assert ddp["steps"] == gpu_check.DRY.warmup + gpu_check.DRY.steps
    table = result.with_suffix(".md").read_text()
    assert "| res_small | resident | True |" in table and "DDP smoke" in table
    assert "# gpu-check" in capsys.readouterr().out  # the table, printed too
