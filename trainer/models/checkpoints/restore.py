"""A checkpoint's network rebuilt for given sessions, every tensor restored exactly.

The model is built from the checkpoint's config for the sessions (readout ``i`` = session
``i``, as in VisionCore), then the checkpoint's state dict is loaded with ``strict=True``:
a missing, unexpected or differently shaped tensor is an error, never a silently fresh
parameter. Readout sizes are checked against the sessions first, so the usual mistake (a
dataset config with other sessions or other units) reads as one line naming the session.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from trainer.contract.errors import ConfigError
from trainer.data.datasets import SessionInfo
from trainer.models.build import build_model
from trainer.models.checkpoints.files import COREJOB, CheckpointModel
from trainer.models.lightning_module import session_from_dict
from trainer.models.model import MultiDatasetV1Model


def check_sessions(ckpt: CheckpointModel, sessions: Sequence[SessionInfo], dataset: str) -> None:
    """The dataset's sessions are the checkpoint's readouts: count, units (and names, ours)."""
    if len(ckpt.units) != len(sessions):
        raise ConfigError(
            dataset,
            "sessions",
            f"{len(sessions)} sessions ({', '.join(s.name for s in sessions)}) but "
            f"{ckpt.path} has {len(ckpt.units)} readouts (units {list(ckpt.units)})",
        )
    for i, (info, units) in enumerate(zip(sessions, ckpt.units, strict=True)):
        if info.n_units != units:
            raise ConfigError(
                dataset,
                f"sessions[{i}] {info.name}",
                f"{info.n_units} units in the dataset config, {units} in readout {i} of "
                f"{ckpt.path}",
            )
    if ckpt.kind == COREJOB and ckpt.sessions:
        for i, (info, saved) in enumerate(zip(sessions, ckpt.sessions, strict=True)):
            if info.name != saved.get("name"):
                raise ConfigError(
                    dataset,
                    f"sessions[{i}]",
                    f"{info.name!r} but readout {i} of {ckpt.path} was trained on "
                    f"{saved.get('name')!r}",
                )


def restore_state(model: torch.nn.Module, ckpt: CheckpointModel) -> None:
    """Load ``ckpt.state`` into ``model`` strictly; a mismatch is one line naming tensors."""
    target = model.state_dict()
    missing = sorted(set(target) - set(ckpt.state))
    unexpected = sorted(set(ckpt.state) - set(target))
    shapes = [
        f"{k} {tuple(ckpt.state[k].shape)} vs {tuple(v.shape)}"
        for k, v in target.items()
        if k in ckpt.state and ckpt.state[k].shape != v.shape
    ]
    if missing or unexpected or shapes:
        problems = [
            f"{label}: {', '.join(items[:3])}{' ...' if len(items) > 3 else ''}"
            for label, items in (
                ("missing", missing),
                ("unexpected", unexpected),
                ("other shapes (checkpoint vs model)", shapes),
            )
            if items
        ]
        raise ConfigError(
            ckpt.path,
            "state_dict",
            f"does not fit model {ckpt.model_config.get('name')!r}: {'; '.join(problems)}",
        )
    model.load_state_dict(ckpt.state, strict=True)


def build_restored(ckpt: CheckpointModel, sessions: Sequence[SessionInfo]) -> MultiDatasetV1Model:
    """The checkpoint's network for ``sessions`` (already checked), in eval mode."""
    model = build_model(ckpt.model_config, sessions)
    restore_state(model, ckpt)
    return model.eval()


def sessions_for_inputs(
    ckpt: CheckpointModel, n_lags: int, image_shape: tuple[int, int], behavior_dim: int
) -> list[SessionInfo]:
    """Sessions shaped like given inputs, one per readout (prediction without a dataset).

    Ours carry their sessions; VisionCore's only the readout sizes, so the input shapes
    stand in for the dataset config that VisionCore would have read them from.
    """
    if ckpt.kind == COREJOB and ckpt.sessions:
        return [session_from_dict(s) for s in ckpt.sessions]
    return [
        SessionInfo(f"readout{i}", units, n_lags, image_shape, behavior_dim, (), "")
        for i, units in enumerate(ckpt.units)
    ]
