"""``affine_stim_codec``: uint8 stim + (scale, offset) decodes to what the ops compute."""

from __future__ import annotations

import numpy as np
import pytest

from tests.trainer.data.transforms.sample_sessions import make_context
from trainer.data.transforms import affine_stim_codec, build_transform

EVERY_PIXEL = np.arange(256, dtype=np.uint8).reshape(256, 1, 1)


@pytest.mark.parametrize(
    "ops",
    [
        [],
        [{"pixelnorm": {}}, {"unsqueeze": 1}],  # every VisionCore basic config
        [{"pixelnorm": {}}, {"mul": 2.5}, {"cast": "float32"}],
        [{"mul": {"factor": -0.01}}, {"pixelnorm": {}}],
    ],
)
def test_codec_matches_the_ops_on_every_uint8_value(ops):
    scale, offset = affine_stim_codec(ops)
    derived = build_transform(ops, "d.yaml: stim.ops")(EVERY_PIXEL, make_context(np.zeros(256)))
    decoded = EVERY_PIXEL.astype(np.float32) * np.float32(scale) + np.float32(offset)
    rounding = 4 * np.finfo(np.float32).eps * np.abs(derived).max()  # float32, either way
    np.testing.assert_allclose(derived.reshape(256), decoded.reshape(256), rtol=0, atol=rounding)


@pytest.mark.parametrize(
    "ops",
    [
        [{"pixelnorm": {}}, {"fftwhitening": {}}],
        [{"pixelnorm": {}}, {"dacones": {"filter_length": 8}}],
        [{"symlog": {}}],
        [{"cast": "float16"}],
        [{"pixelnorm": {}}, {"temporal_basis": {}}],
    ],
)
def test_ops_that_are_not_per_pixel_affine_have_no_codec(ops):
    assert affine_stim_codec(ops) is None
