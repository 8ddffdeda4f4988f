"""Deriving training arrays from a raw session with a dataset config, checked by formula."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.trainer.data.derived.conftest import HISTORY_CONFIG, TYPES
from trainer.contract.errors import DataError
from trainer.data.derived.derive import derive_session
from trainer.data.transforms import OpContext, build_datafilter, resample

WHERE = str(HISTORY_CONFIG)


def at_120(raw_session, stim_type):
    return resample(raw_session.recording(stim_type), 120.0).covariates


def test_visioncores_history_config_derives_its_arrays(raw_session, history_fields) -> None:
    derived = derive_session(raw_session, history_fields, "uint8", WHERE)
    a = derived.arrays
    parts = [at_120(raw_session, t) for t in TYPES]
    cols = [list(raw_session.cids).index(c) for c in history_fields["cids"]]
    # types one after the other, robs summed to 120 Hz, cids columns in the listed order
    expected_robs = np.concatenate([p["robs"][:, cols] for p in parts])
    np.testing.assert_array_equal(a["robs"], expected_robs)
    np.testing.assert_array_equal(a["rates"], np.concatenate([p["rates"][:, cols] for p in parts]))
    assert derived.meta["n_units"] == 6 and derived.meta["cids"] == history_fields["cids"]
    # history: robs of the kept units (select_units by cids)
    np.testing.assert_array_equal(a["history"], a["robs"])
    # behaviour: eye_vel's 40 columns, then eye position as resampled (concatenated in order)
    assert a["behavior"].shape == (a["robs"].shape[0], 42)
    eyepos = np.concatenate([p["eyepos"] for p in parts])
    np.testing.assert_array_equal(a["behavior"][:, 40:], eyepos)
    # stimulus: affine ops (pixelnorm, unsqueeze) keep the raw uint8 pixels plus the codec
    np.testing.assert_array_equal(a["stim"], np.concatenate([p["stim"] for p in parts]))
    assert derived.meta["stim"] == {"storage": "uint8", "codec": [1 / 255, -127 / 255]}
    # one segment per type, trial ids distinct across them
    segs = derived.meta["segments"]
    assert [s["stop"] - s["start"] for s in segs] == [p["robs"].shape[0] for p in parts]
    first, second = (a["trial_ids"][s["start"] : s["stop"]] for s in segs)
    assert first.max() < second.min()


def test_the_mask_ands_the_config_datafilters(raw_session, history_fields) -> None:
    """``dfs`` is each datafilter op's mask (the ops are tested against their formulas in
    ``tests/trainer/data/transforms``) AND-combined per unit, on the resampled covariates."""
    a = derive_session(raw_session, history_fields, "uint8", WHERE).arrays
    recording = resample(raw_session.recording(TYPES[0]), 120.0)
    cov, n = recording.covariates, recording.n_bins
    cols = [list(raw_session.cids).index(c) for c in history_fields["cids"]]
    context = OpContext(
        raw_session, raw_session.cids[cols], 120.0, cov["t_bins"], cov["trial_inds"],
        cov["dpi_valid"],
    )  # fmt: skip
    ops = history_fields["datafilters"]["dfs"]["ops"]
    masks = [build_datafilter([op], WHERE)(cov, context) for op in ops]
    assert [m.shape for m in masks] == [(n, 1), (n, 6)]
    expected = masks[0] & masks[1]
    assert 0 < expected.sum() < expected.size  # both filters remove something here
    np.testing.assert_array_equal(a["dfs"][:n].astype(bool), expected)


def test_non_affine_stim_ops_store_floats_in_the_chosen_dtype(raw_session, history_fields):
    ops = [{"fftwhitening": {}}, {"unsqueeze": 1}]
    fields = {**history_fields, "transforms": {**history_fields["transforms"]}}
    fields["transforms"]["stim"] = {**fields["transforms"]["stim"], "ops": ops}
    f32 = derive_session(raw_session, fields, "uint8", WHERE)  # uint8 impossible: float32
    assert f32.meta["stim"] == {"storage": "float32", "codec": None}
    assert f32.arrays["stim"].dtype == np.float32 and f32.arrays["stim"].ndim == 3
    bf16 = derive_session(raw_session, fields, "bfloat16", WHERE).arrays["stim"]
    assert bf16.dtype == np.uint16
    decoded = torch.from_numpy(bf16.view(np.int16)).view(torch.bfloat16).float().numpy()
    expected = torch.from_numpy(f32.arrays["stim"]).to(torch.bfloat16).float().numpy()
    np.testing.assert_array_equal(decoded, expected)


def test_affine_stim_in_float32_is_the_decoded_pixels(raw_session, history_fields) -> None:
    derived = derive_session(raw_session, history_fields, "float32", WHERE)
    raw = np.concatenate([at_120(raw_session, t)["stim"] for t in TYPES])
    expected = raw.astype(np.float32) * np.float32(1 / 255) + np.float32(-127 / 255)
    np.testing.assert_array_equal(derived.arrays["stim"], expected)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"cids": [123456]}, "cids [123456] are not units of session s"),
        ({"types": ["gratings"]}, "types: session s has no 'gratings' recording"),
        ({"sampling": {"source_rate": 480.0, "target_rate": 120.0}},
         "sampling.source_rate is 480 Hz but session s's backimage is recorded at 240 Hz"),
        ({"transforms": {"pupil": {"source": "pupil", "ops": [], "expose_as": "behavior",
                                   "concatenate": False}}},
         "transforms.pupil.source: session s has no covariate 'pupil'"),
    ],
)  # fmt: skip
def test_a_config_the_session_cannot_serve_is_one_line(
    raw_session, history_fields, change, expected
) -> None:
    with pytest.raises(DataError) as caught:
        derive_session(raw_session, {**history_fields, **change}, "uint8", WHERE)
    assert str(caught.value).startswith(f"{WHERE}: {expected}"), str(caught.value)
