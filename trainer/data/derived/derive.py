"""Training arrays from a recorded session and a dataset config: the pure core.

For each stimulus type of the config, in order (VisionCore's ``prepare_data``):

1. ``resample`` the recording from ``sampling.source_rate`` to ``target_rate``;
2. datafilters on the resampled covariates (AND-combined masks; ``dfs`` is the one used);
3. transforms: ``source`` covariate → ops → ``expose_as``; entries with ``concatenate:
   true`` and the same ``expose_as`` are joined on the last axis in config order;
4. ``robs`` (and the ground-truth ``rates`` of a synthetic session) keep the ``cids``
   columns, which also sets the readout size.

The types are then concatenated in time; each type's trial ids are shifted past the
previous type's so that no trial spans two types, and ``segments`` records where each
type starts (the split is drawn per type, as VisionCore draws it).

The stimulus stays uint8 when the stim ops are per-pixel affine (``affine_stim_codec``):
the raw pixels are stored and decoded on the device by ``scale * u8 + offset``; otherwise
the ops run here and the result is stored as float32 or bfloat16 (``dset_dtype``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from trainer.contract.errors import DataError
from trainer.data.transforms import (
    OpContext,
    affine_stim_codec,
    build_datafilter,
    build_transform,
    resample,
)
from trainer.recordings.session import RawRecording, RawSession

_BLOCK = 4096  # frames per block when converting the stimulus


@dataclass
class DerivedArrays:
    """What one session contributes to training: arrays indexed by bin, plus metadata."""

    arrays: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StimPlan:
    """How the stimulus is stored: the transform that makes it and, if affine, its codec."""

    ops: list[dict[str, Any]]
    codec: tuple[float, float] | None  # (scale, offset) on uint8 pixels
    storage: str  # uint8, float32 or bfloat16


def stim_plan(fields: dict[str, Any], dset_dtype: str) -> StimPlan | None:
    """The stimulus' storage for a config and ``dset_dtype``; None when no sample uses it."""
    if "stim" not in fields["keys_lags"]:
        return None
    specs = [s for s in fields["transforms"].values() if s["expose_as"] == "stim"]
    if specs and (len(specs) > 1 or specs[0]["source"] != "stim" or specs[0]["concatenate"]):
        ops = None  # several or non-stim sources: computed like any other key, float
    else:
        ops = specs[0]["ops"] if specs else []
    codec = affine_stim_codec(ops) if ops is not None else None
    if codec is not None and dset_dtype == "uint8":
        return StimPlan(ops, codec, "uint8")
    storage = "float32" if dset_dtype == "uint8" else dset_dtype
    return StimPlan(ops if ops is not None else [], codec, storage)


def kept_columns(session: RawSession, cids: list[int] | None, where: str) -> np.ndarray:
    """Columns of ``robs`` holding the config's unit ids (all columns without ``cids``)."""
    ids = np.asarray(session.cids, dtype=np.int64)
    if cids is None:
        return np.arange(ids.shape[0])
    column = {int(unit): col for col, unit in enumerate(ids)}
    missing = [c for c in cids if c not in column]
    if missing:
        raise DataError(
            where,
            f"cids {missing[:5]}{' ...' if len(missing) > 5 else ''} are not units of session "
            f"{session.name} (it has {ids.shape[0]} units, ids {ids.min()}..{ids.max()})",
        )
    return np.asarray([column[c] for c in cids], dtype=np.int64)


def derive_session(
    session: RawSession, fields: dict[str, Any], dset_dtype: str, where: str
) -> DerivedArrays:
    """Every array a dataset config's samples read, for one session (see module doc)."""
    cols = kept_columns(session, fields.get("cids"), where)
    plan = stim_plan(fields, dset_dtype)
    parts = [
        _derive_type(session, stim_type, fields, cols, plan, where) for stim_type in fields["types"]
    ]
    arrays, segments = _concatenate(parts)
    meta = {
        "session": session.name,
        "types": list(fields["types"]),
        "segments": segments,
        "cids": [int(session.cids[c]) for c in cols],
        "n_units": int(cols.shape[0]),
        "rate_hz": parts[0]["rate_hz"],
        "stim": None
        if plan is None
        else {"storage": plan.storage, "codec": list(plan.codec) if plan.codec else None},
    }
    return DerivedArrays(arrays, meta)


def _recording(session: RawSession, stim_type: str, fields: dict[str, Any], where: str):
    try:
        recording = session.recording(stim_type)
    except KeyError as error:
        raise DataError(where, f"types: {error.args[0]}") from None
    sampling = fields.get("sampling")
    if sampling is None:
        return recording
    if abs(recording.source_rate - sampling["source_rate"]) > 1e-6:
        raise DataError(
            where,
            f"sampling.source_rate is {sampling['source_rate']:g} Hz but session "
            f"{session.name}'s {stim_type} is recorded at {recording.source_rate:g} Hz",
        )
    if sampling["target_rate"] == recording.source_rate:
        return recording
    return resample(recording, sampling["target_rate"])


def _derive_type(
    session: RawSession,
    stim_type: str,
    fields: dict[str, Any],
    cols: np.ndarray,
    plan: StimPlan | None,
    where: str,
) -> dict[str, Any]:
    rec: RawRecording = _recording(session, stim_type, fields, where)
    cov = rec.covariates
    trial_inds = np.asarray(cov["trial_inds"], dtype=np.int64)
    context = OpContext(
        session=session,
        cids=np.asarray(session.cids)[cols],
        rate_hz=float(rec.source_rate),
        t_bins=np.asarray(cov["t_bins"]),
        trial_inds=trial_inds,
        dpi_valid=np.asarray(cov["dpi_valid"]),
    )
    n_units = cols.shape[0]
    out: dict[str, Any] = {"rate_hz": float(rec.source_rate)}
    out["robs"] = np.asarray(cov["robs"][:, cols], dtype=np.float32)
    if "rates" in cov:
        out["rates"] = np.asarray(cov["rates"][:, cols], dtype=np.float32)
    out["trial_ids"] = trial_inds
    masks = _datafilters(cov, fields, context, where)
    dfs = masks.pop("dfs", np.ones((trial_inds.shape[0], 1), dtype=bool))
    out["dfs"] = np.broadcast_to(dfs, (dfs.shape[0], n_units)).astype(np.uint8)
    out.update({k: v.astype(np.uint8) for k, v in masks.items()})
    out.update(_transforms(cov, fields, context, plan, where))
    for key in fields["keys_lags"]:  # raw covariates a sample takes as they are
        if key not in out and key != "stim" and key in cov:
            out[key] = np.asarray(cov[key], dtype=np.float32)
    if plan is not None:
        out["stim"] = _stim(cov, plan, context, where)
        out["contrast"] = _frame_contrast(out["stim"])
    return out


def _datafilters(cov, fields, context: OpContext, where: str) -> dict[str, np.ndarray]:
    masks = {}
    for name, spec in fields["datafilters"].items():
        run = build_datafilter(spec["ops"], f"{where}: datafilters.{name}.ops")
        mask = np.asarray(run(cov, context), dtype=bool)
        masks[spec["expose_as"]] = mask if mask.ndim == 2 else mask[:, None]
    return masks


def _transforms(cov, fields, context: OpContext, plan, where: str) -> dict[str, np.ndarray]:
    exposed: dict[str, list[np.ndarray]] = {}
    for name, spec in fields["transforms"].items():
        if spec["expose_as"] == "stim" and plan is not None:
            continue  # the stimulus has its own storage path (_stim)
        source = spec["source"]
        if source not in cov:
            raise DataError(
                where,
                f"transforms.{name}.source: session {context.session.name} has no covariate "
                f"{source!r} (has: {', '.join(sorted(cov))})",
            )
        run = build_transform(spec["ops"], f"{where}: transforms.{name}.ops")
        value = np.asarray(run(np.asarray(cov[source]), context), dtype=np.float32)
        exposed.setdefault(spec["expose_as"], []).append(value)
    return {
        key: values[0] if len(values) == 1 else np.concatenate(values, axis=-1)
        for key, values in exposed.items()
    }


def _stim(cov, plan: StimPlan, context: OpContext, where: str) -> np.ndarray:
    """The stimulus in its storage dtype (bfloat16 as its uint16 bit pattern)."""
    raw = cov["stim"]
    if plan.storage == "uint8":
        return np.ascontiguousarray(raw, dtype=np.uint8)
    if plan.codec is not None:
        scale, offset = plan.codec
        values = np.empty(raw.shape, dtype=np.float32)
        for start in range(0, raw.shape[0], _BLOCK):
            block = np.asarray(raw[start : start + _BLOCK], dtype=np.float32)
            values[start : start + _BLOCK] = block * np.float32(scale) + np.float32(offset)
    else:
        run = build_transform(plan.ops, f"{where}: transforms.stim.ops")
        values = np.asarray(run(np.asarray(raw), context), dtype=np.float32)
        if values.ndim == 4 and values.shape[1] == 1:
            values = values[:, 0]  # the channel axis is added back when samples are read
    if plan.storage == "float32":
        return values
    bits = torch.from_numpy(values).to(torch.bfloat16).view(torch.int16).numpy()
    return bits.view(np.uint16)


def _frame_contrast(stim: np.ndarray) -> np.ndarray:
    """Per-bin RMS contrast of the stored stimulus (any affine storage ranks bins alike)."""
    flat = stim.reshape(stim.shape[0], -1)
    if stim.dtype == np.uint16:  # bfloat16 bits
        flat = torch.from_numpy(flat.view(np.int16)).view(torch.bfloat16).float().numpy()
    out = np.empty(stim.shape[0], dtype=np.float32)
    for start in range(0, stim.shape[0], _BLOCK):
        out[start : start + _BLOCK] = flat[start : start + _BLOCK].astype(np.float32).std(axis=1)
    return out


def _concatenate(parts: list[dict[str, Any]]) -> tuple[dict[str, np.ndarray], list[dict]]:
    """Types one after the other in time; trial ids shifted so that they stay distinct."""
    keys = [k for k in parts[0] if k != "rate_hz"]
    for part in parts[1:]:
        if sorted(k for k in part if k != "rate_hz") != sorted(keys):
            raise DataError(None, "stimulus types of one session derived different keys")
    segments, offset, start = [], 0, 0
    for part in parts:
        trials = part["trial_ids"]
        shift = offset - int(trials.min()) if trials.size else offset
        part["trial_ids"] = trials + shift
        stop = start + trials.shape[0]
        segments.append({"start": start, "stop": stop, "trial_shift": shift})
        offset = int(part["trial_ids"].max()) + 1 if trials.size else offset
        start = stop
    arrays = {}
    for key in keys:
        shapes = {p[key].shape[1:] for p in parts}
        if len(shapes) > 1:
            raise DataError(None, f"{key}: the stimulus types give different shapes {shapes}")
        arrays[key] = np.concatenate([p[key] for p in parts], axis=0)
    return arrays, segments
