"""Every component type VisionCore's model configs use, and the schema of its ``params``.

``COMPONENTS[kind][type]`` maps each key a component accepts to its ``Field``; keys whose
values are themselves specs (conv blocks, MLP encoders) are checked further by
``NESTED``. Defaults are VisionCore's. Keys VisionCore accepts but never reads are
``ANY`` fields marked "accepted, unused (as in VisionCore)" so its files load unchanged.
"""

from __future__ import annotations

from typing import Any

from trainer.configs.model_schema.blocks import ACTIVATIONS, BLOCK, CONV_PARAMS, NORMS, check_block
from trainer.configs.model_schema.fields import (
    ANY,
    INTS,
    MAPPING,
    NUMBERS,
    SIZE,
    Field,
    check_mapping,
)
from trainer.contract.errors import ConfigError

KINDS = ("adapter", "frontend", "convnet", "modulator", "recurrent", "readout", "history_encoder")
UNUSED = "accepted, unused (as in VisionCore)"

ADAPTER = {
    "init_sigma": Field(float, 1.0, doc="initial blur sigma (pixels)"),
    "grid_size": Field(int, 25, doc="output image is grid_size x grid_size"),
    "transform": Field(str, "scale", ("scale", "affine")),
}
LEARNABLE_TEMPORAL = {
    "kernel_size": Field(int, 16, nullable=True, doc="temporal taps; null: all lags"),
    "num_channels": Field(int, 6),
    "init_type": Field(
        str, "gaussian_derivatives", ("gaussian_derivatives", "random", "identity", "biphasic")
    ),
    "causal": Field(bool, True),
    "split_MP": Field(bool, False, doc="split into magno (low-pass) and parvo (residual) inputs"),
    "bias": Field(bool, False),
    "stride": Field(SIZE, 1),
    "dilation": Field(SIZE, 1),
    **{k: CONV_PARAMS[k] for k in ("padding_mode", "aa_signal", "aa_window", "aa_window_kwargs")},
    **{k: CONV_PARAMS[k] for k in ("use_weight_norm", "keep_unit_norm", "weight_norm_dim")},
}
DA = {
    "alpha": Field(float, 1.0, minimum=None),
    "beta": Field(float, 0.00008, minimum=None),
    "gamma": Field(float, 0.5),
    "tau_y_ms": Field(float, 5.0),
    "tau_z_ms": Field(float, 60.0),
    "n_y": Field(float, 5.0),
    "n_z": Field(float, 2.0),
    "filter_length": Field(int, 200),
    "learnable_params": Field(bool, False),
    "height": Field(int, None, doc="informational"),
    "width": Field(int, None, doc="informational"),
}
TEMPORAL_BASIS = {
    "num_delta_funcs": Field(int, 0),
    "num_cosine_funcs": Field(int, 10),
    "history_bins": Field(int, 32),
    "log_spacing": Field(bool, True),
    "peak_range_ms": Field(NUMBERS, [5, 100]),
    "bin_size_ms": Field(float, 5),
    "normalize": Field(bool, True),
    "orthogonalize": Field(bool, False),
    "causal": Field(bool, True),
    "batch_norm": Field(bool, False),
    "chomp": Field(int, None, doc="drop this many first time steps"),
}
CONV_FRONTEND = {"out_channels": Field(int, None, doc="required"), **BLOCK}
CONVNET = {
    "channels": Field(INTS, None, doc="required; one entry per block (densenet: growth)"),
    "block_configs": Field(list, None, doc="required; one conv block per entry of channels"),
    "stem_config": Field(MAPPING, None, doc="optional conv block with out_channels"),
    "final_activation": Field(str, "none", ACTIVATIONS),
    "resnet_post_add_activation": Field(str, None, ACTIVATIONS, doc="resnet: after the sum"),
    "base_channels": Field(ANY, None, doc=UNUSED),
    "checkpointing": Field(ANY, None, doc=UNUSED),
    "dim": Field(ANY, None, doc=UNUSED),
}
ENCODER = {
    "type": Field(str, "mlp", ("mlp",)),
    "dims": Field(INTS, [64, 64], doc="hidden sizes, then the output size"),
    "activation": Field(str, "gelu", ACTIVATIONS),
    "bias": Field(bool, True),
    "residual": Field(bool, True, doc="adds the input when sizes match"),
    "dropout": Field(float, 0.0),
    "last_layer_activation": Field(bool, False),
}
_BEHAVIOR = {
    "behavior_dim": Field(int, None, doc="null: the sessions' behaviour width"),
    "n_vars": Field(int, None, doc="alias of behavior_dim"),
    "feature_dim": Field(int, None, doc="set from the convnet's output channels"),
}
CONCAT = {**_BEHAVIOR, "encoder_params": Field(MAPPING, {}, doc="the behaviour MLP")}
FILM = {**_BEHAVIOR, "encoder_params": Field(MAPPING, {}, doc="MLP; scale*x + shift")}
CONVGRU_MODULATOR = {
    **_BEHAVIOR,
    "hidden_dim": Field(int, None, doc="null: feature_dim"),
    "beh_emb_dim": Field(int, 16),
    "kernel_size": Field(int, 3),
    **{
        key: Field(ANY, None, doc=UNUSED)
        for key in (
            "use_layer_norm",
            "learnable_h0",
            "use_depthwise",
            "use_grouped",
            "num_groups",
            "use_residual",
            "grad_clip_val",
        )
    },
}
CONVGRU = {
    "hidden_dim": Field(int, 64),
    "kernel_size": Field(int, 3, doc="odd"),
    "n_layers": Field(int, 1),
}
RNN = {
    "hidden_dim": Field(int, 64),
    "kernel_size": Field(ANY, None, doc=UNUSED),
    "num_layers": Field(int, 1),
    "dropout": Field(float, 0.0),
    "bias": Field(bool, True),
}
GAUSSIAN = {
    "n_units": Field(ANY, None, doc="set from each session's units"),
    "bias": Field(bool, True),
    "initial_std": Field(float, 5.0),
    "initial_mean_scale": Field(float, 0.0),
}
LINEAR = {
    "n_units": Field(ANY, None, doc="set from each session's units"),
    "bias": Field(bool, True),
}
MLP_HISTORY = {
    "num_lags": Field(int, 5, doc="spike-history bins per unit"),
    "hidden_dims": Field(INTS, [32, 10]),
    "act_type": Field(str, "relu", ACTIVATIONS),
    "act_params": Field(MAPPING, {}),
    "norm_type": Field(str, None, NORMS),
    "norm_params": Field(MAPPING, {}),
    "spectral_norm": Field(bool, False),
    "bias": Field(bool, True),
    "dropout": Field(float, 0.0),
    "residual": Field(bool, False),
    "output_activation": Field(bool, False, doc="an activation on the output layer too"),
}

COMPONENTS: dict[str, dict[str, dict[str, Field]]] = {
    "adapter": {"none": {}, "adapter": ADAPTER},
    "frontend": {
        "none": {},
        "learnable_temporal": LEARNABLE_TEMPORAL,
        "da": DA,
        "temporal_basis": TEMPORAL_BASIS,
        "conv": CONV_FRONTEND,
        "adapter": ADAPTER,
    },
    "convnet": {"none": {}, "vanilla": CONVNET, "resnet": CONVNET, "densenet": CONVNET},
    "modulator": {"none": {}, "concat": CONCAT, "film": FILM, "convgru": CONVGRU_MODULATOR},
    "recurrent": {"none": {}, "convgru": CONVGRU, "gru": RNN, "lstm": RNN},
    "readout": {"gaussian": GAUSSIAN, "linear": LINEAR},
    "history_encoder": {"mlp": MLP_HISTORY},
}
ALIASES = {"convnet": {"cnn": "vanilla", "conv": "vanilla"}}
DEFAULT_TYPES = {
    "adapter": "none",
    "frontend": "none",
    "convnet": "none",
    "modulator": "none",
    "recurrent": "none",
    "readout": "gaussian",
    "history_encoder": "mlp",
}
DOCS = {
    "adapter": {"adapter": "per-session blur + resampling grid (scale or affine)"},
    "frontend": {
        "learnable_temporal": "learned temporal filters (valid in time), one conv over lags",
        "da": "Clark et al. dynamic adaptation of photoreceptors (1 channel)",
        "temporal_basis": "fixed raised-cosine temporal basis",
        "conv": "one conv block",
        "adapter": "the adapter, shared",
    },
    "convnet": {
        "vanilla": "stack of conv blocks",
        "resnet": "conv blocks with 1x1x1 shortcuts, cropped to the main branch",
        "densenet": "conv blocks, each concatenated to its (cropped) input",
    },
    "modulator": {
        "concat": "behaviour MLP appended as channels",
        "film": "behaviour MLP -> scale * x + shift per channel",
        "convgru": "features + behaviour embedding through a ConvGRU; last step",
    },
    "recurrent": {
        "convgru": "convolutional GRU over time",
        "gru": "GRU over flattened frames",
        "lstm": "LSTM over flattened frames",
    },
    "readout": {
        "gaussian": "1x1 features + rotated Gaussian spatial mask on the last frame",
        "linear": "spatial average + linear",
    },
    "history_encoder": {"mlp": "per-session MLP of recent spike counts (v1multi_history)"},
}


def check_component(raw: Any, kind: str, source: str) -> dict[str, Any]:
    """``{type, params}`` with every default filled in (nested specs included)."""
    if raw is None:
        raw = DEFAULT_TYPES[kind]
    if isinstance(raw, str):
        raw = {"type": raw}
    if not isinstance(raw, dict):
        raise ConfigError(source, kind, "expected a mapping with 'type' and 'params'")
    extra = sorted(set(raw) - {"type", "params"})
    if extra:
        raise ConfigError(source, f"{kind}.{extra[0]}", "unknown field; allowed: type, params")
    name = str(raw.get("type", DEFAULT_TYPES[kind])).lower()
    name = ALIASES.get(kind, {}).get(name, name)
    if name not in COMPONENTS[kind]:
        allowed = ", ".join(sorted(COMPONENTS[kind]))
        raise ConfigError(source, f"{kind}.type", f"unknown {kind} {name!r}; allowed: {allowed}")
    key = f"{kind}.params"
    params = check_mapping(
        raw.get("params"), COMPONENTS[kind][name], source, key, f"{kind} {name!r}"
    )
    NESTED.get((kind, name), lambda p, s, k: p)(params, source, key)
    return {"type": name, "params": params}


def _convnet(params: dict, source: str, key: str) -> dict:
    for required in ("channels", "block_configs"):
        if params[required] is None:
            raise ConfigError(source, f"{key}.{required}", "required")
    blocks = params["block_configs"]
    if len(blocks) != len(params["channels"]):
        raise ConfigError(
            source,
            f"{key}.block_configs",
            f"{len(blocks)} blocks for {len(params['channels'])} channels; give one per entry",
        )
    extra = {"out_channels": Field(ANY, None, doc=UNUSED), "channel_multiplier": Field(ANY, None)}
    params["block_configs"] = [
        check_block(b, source, f"{key}.block_configs[{i}]", extra) for i, b in enumerate(blocks)
    ]
    if params["stem_config"] is not None:
        stem = check_block(
            params["stem_config"], source, f"{key}.stem_config", {"out_channels": Field(int)}
        )
        if stem["out_channels"] is None:
            raise ConfigError(source, f"{key}.stem_config.out_channels", "required")
        params["stem_config"] = stem
    return params


def _conv_frontend(params: dict, source: str, key: str) -> dict:
    block = check_block(params, source, key, {"out_channels": Field(int)})
    if block["out_channels"] is None:
        raise ConfigError(source, f"{key}.out_channels", "required")
    params.update(block)
    return params


def _encoder(params: dict, source: str, key: str) -> dict:
    params["encoder_params"] = check_mapping(
        params["encoder_params"], ENCODER, source, f"{key}.encoder_params", "an MLP encoder"
    )
    if params["n_vars"] is not None and params["behavior_dim"] is None:
        params["behavior_dim"] = params["n_vars"]
    return params


def _behavior_alias(params: dict, source: str, key: str) -> dict:
    if params["n_vars"] is not None and params["behavior_dim"] is None:
        params["behavior_dim"] = params["n_vars"]
    return params


NESTED = {
    ("convnet", "vanilla"): _convnet,
    ("convnet", "resnet"): _convnet,
    ("convnet", "densenet"): _convnet,
    ("frontend", "conv"): _conv_frontend,
    ("modulator", "concat"): _encoder,
    ("modulator", "film"): _encoder,
    ("modulator", "convgru"): _behavior_alias,
}
