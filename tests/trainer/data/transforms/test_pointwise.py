"""Per-value ops against their formulas (VisionCore's ``models/data/transforms.py``)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.trainer.data.transforms.sample_sessions import make_context
from trainer.contract.errors import ConfigError
from trainer.data.transforms import build_transform

WHERE = "d.yaml: transforms.x.ops"
RNG = np.random.default_rng(3)


def run(ops, x, ctx=None):
    ctx = ctx or make_context(np.zeros(x.shape[0]))
    return build_transform(ops, WHERE)(x, ctx)


def test_pixelnorm_maps_uint8_to_centred_float32():
    pixels = np.arange(256, dtype=np.uint8).reshape(16, 4, 4)
    out = run([{"pixelnorm": {}}], pixels)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, (pixels.astype(np.float64) - 127) / 255, atol=1e-7)
    assert out.min() == pytest.approx(-127 / 255) and out.max() == pytest.approx(128 / 255)


def test_symlog_is_signed_log1p():
    x = RNG.normal(0, 10, (50, 3)).astype(np.float32)
    expected = np.where(x >= 0, np.log(1 + np.abs(x)), -np.log(1 + np.abs(x)))
    np.testing.assert_allclose(run([{"symlog": {}}], x), expected, rtol=1e-6)


def test_maxnorm_divides_by_the_largest_magnitude_over_all_channels():
    x = np.array([[1.0, -8.0], [2.0, 4.0], [0.5, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(run([{"maxnorm": {}}], x), x / 8.0)
    zeros = np.zeros((4, 2), dtype=np.float32)
    np.testing.assert_array_equal(run([{"maxnorm": {}}], zeros), zeros)  # not NaN


@pytest.mark.parametrize("axis", [0, 1])
def test_diff_keeps_length_and_starts_at_zero(axis):
    x = RNG.normal(size=(7, 5)).astype(np.float32)
    out = run([{"diff": {"axis": axis}}], x)
    assert out.shape == x.shape
    first = [slice(None)] * 2
    first[axis] = 0
    np.testing.assert_array_equal(out[tuple(first)], 0)
    rest = [slice(None)] * 2
    rest[axis] = slice(1, None)
    prev = [slice(None)] * 2
    prev[axis] = slice(None, -1)
    np.testing.assert_allclose(out[tuple(rest)], x[tuple(rest)] - x[tuple(prev)], rtol=1e-6)


def test_mul_scalar_and_mapping_forms():
    x = RNG.normal(size=(6, 2)).astype(np.float32)
    np.testing.assert_allclose(run([{"mul": 240}], x), x * 240, rtol=1e-6)
    np.testing.assert_allclose(run([{"mul": {"factor": -0.5}}], x), x * -0.5, rtol=1e-6)


def test_unsqueeze_and_cast():
    x = RNG.integers(0, 255, (4, 3, 2)).astype(np.uint8)
    assert run([{"unsqueeze": 1}], x).shape == (4, 1, 3, 2)
    assert run([{"unsqueeze": {"axis": -1}}], x).shape == (4, 3, 2, 1)
    out = run([{"cast": "uint8"}], x)
    assert out.dtype == np.uint8 and np.array_equal(out, x)
    assert run([{"cast": {"dtype": "float16"}}], x).dtype == np.float16


def test_the_pipeline_starts_from_float32_as_visioncore_does():
    pixels = np.full((3, 2, 2), 200, dtype=np.uint8)
    out = run([], pixels)
    assert out.dtype == np.float32 and np.all(out == 200.0)


def test_select_units_cids_looks_up_each_kept_unit_column():
    robs = np.arange(5 * 4, dtype=np.float32).reshape(5, 4)
    ctx = make_context(np.zeros(5), session_cids=[7, 3, 11, 20], kept_cids=[11, 7])
    out = run([{"select_units": {"indices": "cids"}}], robs, ctx)
    np.testing.assert_array_equal(out, robs[:, [2, 0]])
    explicit = run([{"select_units": {"indices": [3, 1]}}], robs, ctx)
    np.testing.assert_array_equal(explicit, robs[:, [3, 1]])


def test_select_units_names_a_kept_unit_the_session_lacks():
    ctx = make_context(np.zeros(3), session_cids=[0, 1, 2], kept_cids=[1, 9])
    with pytest.raises(ConfigError, match=r"units 9 are not in session Test_2024-01-01"):
        run([{"select_units": {"indices": "cids"}}], np.zeros((3, 3)), ctx)


def test_splitrelu_doubles_the_split_dim_positive_part_first():
    x = RNG.normal(size=(9, 20)).astype(np.float32)
    out = run([{"splitrelu": {"split_dim": 1, "trainable_gain": False}}], x)
    assert out.shape == (9, 40)
    np.testing.assert_array_equal(out[:, :20], np.maximum(x, 0))
    np.testing.assert_array_equal(out[:, 20:], np.maximum(-x, 0))
    np.testing.assert_allclose(out[:, :20] - out[:, 20:], x)


def test_an_axis_out_of_range_names_the_op():
    with pytest.raises(ConfigError) as caught:
        run([{"symlog": {}}, {"splitrelu": {"split_dim": 2}}], np.zeros((3, 2), np.float32))
    assert str(caught.value).startswith("d.yaml: transforms.x.ops[1].splitrelu: split_dim 2")
    assert "\n" not in str(caught.value)
