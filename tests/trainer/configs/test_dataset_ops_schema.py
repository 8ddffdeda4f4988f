"""The dataset op vocabulary: forms, defaults and one-line errors naming file, key, allowed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from trainer.configs.dataset_schema.ops import (
    DATAFILTER_OPS,
    TRANSFORM_OPS,
    check_op_list,
    ops_reference_markdown,
)
from trainer.contract.errors import ConfigError

WHERE = "exp/multi.yaml: transforms.eye_vel.ops"
VISIONCORE_OPS = {
    "fftwhitening pixelnorm diff mul temporal_basis splitrelu symlog maxnorm dacones"
    " unsqueeze cast select_units smooth": "transform",
    "valid_nlags missing_pct": "datafilter",
}


def error_of(ops, kind="transform") -> str:
    with pytest.raises(ConfigError) as caught:
        check_op_list(ops, WHERE, kind)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("exp/multi.yaml: ")
    return message


def test_the_vocabulary_is_visioncores():
    names = {kind: set() for kind in ("transform", "datafilter")}
    for line, kind in VISIONCORE_OPS.items():
        names[kind] |= set(line.split())
    assert set(TRANSFORM_OPS) == names["transform"]
    assert set(DATAFILTER_OPS) == names["datafilter"]


def test_the_forms_visioncore_writes_resolve_with_defaults():
    ops = [
        {"diff": {"axis": 0}},
        {"mul": 240},
        "symlog",
        {"maxnorm": {}},
        {"unsqueeze": 1},
        {"cast": "float32"},
        {"smooth": [{"type": "gaussian"}, {"params": 1.0}]},
        {"select_units": {"indices": "cids"}},
        {"temporal_basis": {"num_cosine_funcs": 10, "peak_range_ms": [30, 200]}},
    ]
    resolved = check_op_list(ops, WHERE, "transform")
    assert resolved[0] == {"diff": {"axis": 0}}
    assert resolved[1] == {"mul": {"factor": 240.0}}
    assert resolved[2] == {"symlog": {}}
    assert resolved[4] == {"unsqueeze": {"axis": 1}}
    assert resolved[6] == {"smooth": {"type": "gaussian", "params": 1.0}}
    basis = resolved[8]["temporal_basis"]
    assert basis["history_bins"] == 32 and basis["causal"] is True and basis["bin_size_ms"] == 5
    assert check_op_list(resolved, WHERE, "transform") == resolved  # resolving is idempotent
    filters = check_op_list([{"valid_nlags": 32}, {"missing_pct": None}], WHERE, "datafilter")
    assert filters == [{"valid_nlags": {"n_lags": 32}}, {"missing_pct": {"threshold": 45.0}}]


def test_an_unknown_op_lists_the_allowed_ones():
    message = error_of([{"pixelnorm": {}}, {"blur": {}}])
    assert message.startswith("exp/multi.yaml: transforms.eye_vel.ops[1].blur: unknown")
    assert "allowed: fftwhitening, pixelnorm, diff" in message and "smooth" in message


def test_an_unknown_parameter_lists_the_parameters():
    message = error_of([{"splitrelu": {"split_dim": 1, "gain": 2}}])
    assert message == (
        "exp/multi.yaml: transforms.eye_vel.ops[0].splitrelu.gain: unknown parameter of"
        " splitrelu; allowed: split_dim, trainable_gain"
    )


@pytest.mark.parametrize(
    ("ops", "key", "fragment"),
    [
        (
            [{"temporal_basis": {"history_bins": "50"}}],
            "temporal_basis.history_bins",
            "expected int",
        ),
        ([{"temporal_basis": {"causal": "no"}}], "temporal_basis.causal", "expected bool"),
        (
            [{"temporal_basis": {"peak_range_ms": [30]}}],
            "temporal_basis.peak_range_ms",
            "[first, last]",
        ),
        ([{"temporal_basis": {"chomp": 3}}], "temporal_basis.chomp", "allowed: 0"),
        ([{"cast": "complex64"}], "cast.dtype", "allowed: float16, float32"),
        ([{"smooth": {"type": "box"}}], "smooth.type", "allowed: gaussian"),
        ([{"select_units": {}}], "select_units.indices", "required"),
        ([{"select_units": {"indices": "all"}}], "select_units.indices", '"cids" or a list'),
        ([{"mul": [2]}], "mul", "expected a mapping"),
        ([{"diff": {}, "symlog": {}}], "", "one '<op>: <config>'"),
    ],
)
def test_wrong_values_name_the_key_and_what_is_allowed(ops, key, fragment):
    message = error_of(ops)
    full_key = "transforms.eye_vel.ops[0]" + (f".{key}" if key else "")
    assert message.startswith(f"exp/multi.yaml: {full_key}: ")
    assert fragment in message


def test_theshold_is_accepted_where_it_meant_what_visioncore_applied():
    resolved = check_op_list([{"missing_pct": {"theshold": 45}}], WHERE, "datafilter")
    assert resolved == [{"missing_pct": {"threshold": 45.0}}]
    message = error_of([{"missing_pct": {"theshold": 30}}], "datafilter")
    assert "missing_pct.theshold: VisionCore ignores this misspelt key" in message
    assert "'threshold: 30'" in message
    twice = error_of([{"missing_pct": {"theshold": 45, "threshold": 45}}], "datafilter")
    assert "give threshold only once" in twice


def test_a_transform_op_is_not_a_datafilter():
    message = error_of([{"pixelnorm": {}}], "datafilter")
    assert "unknown datafilter op; allowed: valid_nlags, missing_pct" in message


def test_the_reference_lists_every_op_and_parameter():
    text = ops_reference_markdown()
    for vocabulary in (TRANSFORM_OPS, DATAFILTER_OPS):
        for name, spec in vocabulary.items():
            assert f"- **`{name}`** — {spec.doc}" in text
            for param in spec.params:
                assert f"`{param}`:" in text
    assert "`missing_pct: {theshold: 45}` (VisionCore's spelling) is accepted" in text


def test_the_schema_imports_without_torch_and_resolves_to_plain_data():
    code = (
        "import sys; import trainer.configs.dataset_schema.ops;"
        " assert 'torch' not in sys.modules and 'numpy' not in sys.modules, sorted(sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    resolved = check_op_list([{"temporal_basis": {}}, {"smooth": 1}], WHERE, "transform")
    assert json.loads(json.dumps(resolved)) == resolved  # hashable as JSON for cache keys
