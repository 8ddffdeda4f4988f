"""``corejob-train predict``: a checkpoint's responses to given inputs (the "digital twin").

``IN.pt`` is a ``torch.save`` of ``{"stimulus", "behavior", "history", "dataset_idx"}``
(read with ``weights_only=True``); ``OUT.pt`` gets ``{"output": (B, N)}``, exactly what
VisionCore's ``MultiDatasetModel.forward`` returns: readout, history term, output
activation, baseline, clamp. The stimulus is fed as it is (VisionCore's lag layout is the
caller's, as it was in training). Every input is checked against the model first, so a
wrong shape is one line naming the key rather than a convolution's complaint.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from trainer.checkpoints import write_atomically
from trainer.configs.model_schema import has_vision
from trainer.contract.errors import ConfigError, DataError, first_line
from trainer.data.datasets import SessionInfo
from trainer.models.checkpoints.files import CheckpointModel, read_checkpoint_model
from trainer.models.checkpoints.restore import build_restored, sessions_for_inputs

INPUT_KEYS = ("stimulus", "behavior", "history", "dataset_idx")


@dataclass(frozen=True)
class PredictionInputs:
    stimulus: torch.Tensor | None
    behavior: torch.Tensor | None
    history: torch.Tensor | None
    dataset_idx: int

    @property
    def batch(self) -> int:
        given = [t for t in (self.stimulus, self.behavior, self.history) if t is not None]
        return int(given[0].shape[0]) if given else 0


def read_inputs(path: str | Path) -> dict[str, Any]:
    """``IN.pt`` as a dict (tensors only: ``weights_only=True``, never arbitrary code)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("--inputs", str(path), "file not found")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as error:
        first = first_line(error)
        raise DataError(path, f"not a torch.save file of tensors ({first[:200]})") from None
    if not isinstance(raw, dict):
        raise DataError(path, f"holds a {type(raw).__name__}; expected a dict with {INPUT_KEYS}")
    return raw


def check_inputs(
    raw: dict[str, Any], source: str, ckpt: CheckpointModel, sessions: list[SessionInfo] | None
) -> PredictionInputs:
    """Validate ``raw`` against the model (pure); ``sessions`` known for our checkpoints."""
    for key in INPUT_KEYS:
        if key not in raw:
            raise ConfigError(source, key, f"missing (give None when unused); keys: {INPUT_KEYS}")
    extra = sorted(str(k) for k in raw if k not in INPUT_KEYS)
    if extra:
        raise ConfigError(source, extra[0], f"unknown key; expected only {INPUT_KEYS}")
    idx = raw["dataset_idx"]
    if isinstance(idx, torch.Tensor) and idx.numel() == 1 and not idx.is_floating_point():
        idx = int(idx)
    if not isinstance(idx, int) or isinstance(idx, bool) or not 0 <= idx < len(ckpt.units):
        raise ConfigError(
            source, "dataset_idx", f"{idx!r}; an int in [0, {len(ckpt.units)}) (one per readout)"
        )
    config = ckpt.model_config
    stim = _stimulus(raw["stimulus"], source, config, sessions[idx] if sessions else None)
    behavior = _behavior(raw["behavior"], source, config, sessions[idx] if sessions else None)
    history = _history(raw["history"], source, config, ckpt.units[idx])
    inputs = PredictionInputs(stim, behavior, history, idx)
    if inputs.batch == 0:
        raise ConfigError(source, "behavior", "None, and so is the stimulus: nothing to predict")
    for key in ("stimulus", "behavior", "history"):
        tensor = getattr(inputs, key)
        if tensor is not None and tensor.shape[0] != inputs.batch:
            raise ConfigError(
                source, key, f"batch of {tensor.shape[0]}, the other inputs have {inputs.batch}"
            )
    return inputs


def _tensor(value: Any, source: str, key: str, ndim: int, shape_text: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or value.ndim != ndim:
        got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ConfigError(source, key, f"{got}; expected a tensor {shape_text} or None")
    if value.is_complex() or value.dtype == torch.bool:
        raise ConfigError(source, key, f"dtype {value.dtype}; expected float32")
    return value


def _stimulus(value: Any, source: str, config: dict, session: SessionInfo | None):
    if not has_vision(config):
        return None  # modulator-only: VisionCore's module passes stimulus=None too
    channels = config["initial_input_channels"]
    shape = f"(B, {channels}, L, H, W)"
    if value is None:
        raise ConfigError(source, "stimulus", f"None, but the model has a vision core: {shape}")
    stim = _tensor(value, source, "stimulus", 5, shape)
    if not stim.is_floating_point():
        raise ConfigError(source, "stimulus", f"dtype {stim.dtype}; expected float32 {shape}")
    want = (channels, session.n_lags, *session.image_shape) if session else None
    if stim.shape[1] != channels or (want and tuple(stim.shape[1:]) != want):
        expected = f"(B, {', '.join(map(str, want))})" if want else shape
        raise ConfigError(source, "stimulus", f"shape {tuple(stim.shape)}; expected {expected}")
    return stim.float()


def _behavior(value: Any, source: str, config: dict, session: SessionInfo | None):
    modulator = config["modulator"]
    if modulator["type"] == "none":
        if value is not None:
            raise ConfigError(source, "behavior", "the model has no modulator; give None")
        return None
    width = session.behavior_dim if session else modulator["params"].get("behavior_dim")
    shape = f"(B, {width or 'D'})"
    if value is None:
        needs = f"None, but the {modulator['type']} modulator needs {shape}"
        raise ConfigError(source, "behavior", needs)
    behavior = _tensor(value, source, "behavior", 2, shape)
    if width and behavior.shape[1] != width:
        raise ConfigError(source, "behavior", f"shape {tuple(behavior.shape)}; expected {shape}")
    return behavior.float()


def _history(value: Any, source: str, config: dict, units: int):
    if config["model_type"] != "v1multi_history":
        if value is not None:
            kind = config["model_type"]
            raise ConfigError(source, "history", f"model_type {kind} has no history MLP; give None")
        return None
    if value is None:
        return None  # VisionCore's forward adds no history term then
    lags = config["history_encoder"]["params"]["num_lags"]
    shape = f"(B, {lags}, {units})"
    history = _tensor(value, source, "history", 3, shape)
    if tuple(history.shape[1:]) != (lags, units):
        raise ConfigError(source, "history", f"shape {tuple(history.shape)}; expected {shape}")
    return history.float()


def _shape_sessions(ckpt: CheckpointModel, raw: dict[str, Any]) -> list[SessionInfo]:
    """Sessions for building the model; a VisionCore checkpoint's come from the inputs."""
    stim, behavior = raw.get("stimulus"), raw.get("behavior")
    five_d = isinstance(stim, torch.Tensor) and stim.ndim == 5
    n_lags, image = (stim.shape[2], tuple(stim.shape[3:])) if five_d else (1, (1, 1))
    width = behavior.shape[1] if isinstance(behavior, torch.Tensor) and behavior.ndim == 2 else 0
    return sessions_for_inputs(ckpt, int(n_lags), image, int(width))  # type: ignore[arg-type]


@torch.no_grad()
def predict_file(
    checkpoint: str,
    inputs_path: str,
    output_path: str,
    model_config: str | None = None,
    trust: bool = False,
    batch_size: int = 256,
    device: str = "cpu",
) -> tuple[int, int]:
    """Write ``{"output": (B, N)}`` for ``inputs_path`` to ``output_path``; returns (B, N)."""
    ckpt = read_checkpoint_model(checkpoint, model_config, trust)
    raw = read_inputs(inputs_path)
    known = sessions_for_inputs(ckpt, 1, (1, 1), 0) if ckpt.sessions else None
    inputs = check_inputs(raw, str(inputs_path), ckpt, known)
    model = build_restored(ckpt, known or _shape_sessions(ckpt, raw)).to(device)
    chunks = []
    for start in range(0, inputs.batch, batch_size):
        part = [
            None if t is None else t[start : start + batch_size].to(device)
            for t in (inputs.stimulus, inputs.behavior, inputs.history)
        ]
        chunks.append(model(part[0], inputs.dataset_idx, part[1], part[2]).float().cpu())
    output = torch.cat(chunks)
    write_atomically(Path(output_path), lambda handle: torch.save({"output": output}, handle))
    return tuple(output.shape)  # type: ignore[return-value]
