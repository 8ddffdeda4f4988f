"""The schema of a 3-D ``ConvBlock`` (VisionCore's building block) and of its parts.

A block is ``[pad] -> conv -> norm -> act -> dropout -> pool`` in the order its ``order``
lists; ``conv_params`` say what the convolution is (standard or depthwise, kernel
``[T, H, W]``, anti-aliasing window, weight norm), ``norm_type``/``act_type``/``pool_params``
name the other stages. Blocks appear in ``convnet.params.stem_config``,
``convnet.params.block_configs[i]`` and as the ``conv`` frontend.
"""

from __future__ import annotations

from typing import Any

from trainer.configs.model_schema.fields import (
    ANY,
    MAPPING,
    SIZE,
    Field,
    check_mapping,
)
from trainer.contract.errors import ConfigError

# Activation names (case-insensitive ones VisionCore knows by name, then torch.nn classes
# it reaches through getattr, spelled as torch spells them). ``log_softplus`` is ours.
ACTIVATIONS = (
    "none", "identity", "relu", "leakyrelu", "gelu", "sigmoid", "tanh", "silu", "swish",
    "mish", "softplus", "bsoftplus", "square", "splitrelu", "log_softplus",
    "ELU", "SELU", "CELU", "PReLU", "ReLU6", "Hardtanh", "Hardswish", "Hardsigmoid",
    "LogSigmoid", "Softsign", "Tanhshrink", "ReLU", "GELU", "SiLU", "Mish", "Softplus",
    "Sigmoid", "Tanh", "LeakyReLU", "Identity",
)  # fmt: skip
NORMS = ("none", "batch", "instance", "layer", "rms", "group", "grn")
POOLS = ("none", "max", "avg", "adaptivemax", "adaptiveavg", "aablur", "se_pool", "locatt")
CONV_TYPES = ("standard", "depthwise")
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
WINDOWS = (
    "hann", "hamming", "blackman", "bartlett", "cosine", "gaussian", "kaiser", "nuttall",
    "exponential", "general_hamming", "general_cosine",
)  # fmt: skip
ORDER_STEPS = ("pad", "conv", "norm", "act", "dropout", "pool")

CONV_PARAMS: dict[str, Field] = {
    "type": Field(str, "standard", CONV_TYPES, doc="depthwise: per-channel kernel + 1x1x1"),
    "kernel_size": Field(SIZE, None, doc="required; [T, H, W] (an int means all three)"),
    "stride": Field(SIZE, 1),
    "padding": Field(
        SIZE, 0, doc="[T, H, W]; a causal 3-D block replaces T by (kT-1)*dilation past frames"
    ),
    "dilation": Field(SIZE, 1),
    "groups": Field(int, 1, doc="standard convs only"),
    "bias": Field(bool, None, nullable=True, doc="null: a bias only when norm_type is none"),
    "padding_mode": Field(str, "replicate", PADDING_MODES),
    "aa_signal": Field(bool, False, doc="multiply the kernel by a separable window"),
    "aa_window": Field(str, "hann", WINDOWS, doc="torch.signal.windows name"),
    "aa_window_kwargs": Field(MAPPING, {}, doc="window arguments; `power` raises it"),
    "use_weight_norm": Field(bool, False, doc="weight = g * v / |v| per output channel"),
    "keep_unit_norm": Field(bool, False, doc="with weight norm: g fixed at 1"),
    "weight_norm_dim": Field(int, 0, doc="depthwise kernels' weight-norm axis"),
}
NORM_PARAMS: dict[str, Field] = {
    "eps": Field(float, 1e-5),
    "affine": Field(bool, None, nullable=True, doc="null: true (instance: false)"),
    "target_dim": Field(SIZE, 1, doc="layer/rms: the normalised axes"),
    "num_groups": Field(int, 1, doc="group norm"),
}
ACT_PARAMS: dict[str, Field] = {
    "inplace": Field(bool, False),
    "negative_slope": Field(float, 0.01, doc="leakyrelu"),
    "approximate": Field(str, "none", ("none", "tanh"), doc="gelu"),
    "beta_init": Field(float, 1.0, doc="bsoftplus"),
    "beta_min": Field(float, 0.1, doc="bsoftplus"),
    "beta_max": Field(float, 10.0, doc="bsoftplus"),
    "split_dim": Field(int, 1, doc="splitrelu"),
    "trainable_gain": Field(bool, False, doc="splitrelu"),
}
POOL_PARAMS: dict[str, Field] = {
    "type": Field(str, "none", POOLS),
    "kernel_size": Field(SIZE, None, doc="max/avg (adaptive: the output size)"),
    "stride": Field(SIZE, None, doc="null: max/avg use kernel_size, aablur/se_pool 2"),
    "padding": Field(SIZE, 0),
    "r": Field(int, 8, doc="aablur/se_pool squeeze-excite reduction"),
    "use_soft": Field(bool, True, doc="aablur/se_pool: SoftPool (else average)"),
    "chan_window": Field(int, 3, doc="locatt"),
    "spatial_kernel": Field(int, 3, doc="locatt"),
    "channels": Field(
        int,
        None,
        nullable=True,
        doc="ignored: the block's own count is used (VisionCore's locatt requires it)",
    ),
}
BLOCK: dict[str, Field] = {
    "conv_params": Field(MAPPING, None, doc="required; see conv_params"),
    "norm_type": Field(str, "batch", NORMS, nullable=True),
    "norm_params": Field(MAPPING, {}, nullable=True),
    "act_type": Field(str, "relu", ACTIVATIONS, nullable=True),
    "act_params": Field(MAPPING, {}, nullable=True),
    "pool_params": Field(ANY, None, nullable=True, doc="mapping, 'none' or null"),
    "dropout": Field(float, 0.0),
    "causal": Field(bool, True, doc="pad time on the past side only"),
    "order": Field(list, list(ORDER_STEPS), doc=f"steps from {', '.join(ORDER_STEPS)}"),
}


def check_block(raw: Any, source: str, key: str, extra: dict[str, Field] | None = None) -> dict:
    """A fully resolved block spec (every nested default filled in)."""
    fields = {**(extra or {}), **BLOCK}
    block = check_mapping(raw, fields, source, key, "a conv block")
    if block["conv_params"] is None:
        raise ConfigError(source, f"{key}.conv_params", "required (at least kernel_size)")
    block["conv_params"] = check_mapping(
        block["conv_params"], CONV_PARAMS, source, f"{key}.conv_params", "conv_params"
    )
    if block["conv_params"]["kernel_size"] is None:
        raise ConfigError(source, f"{key}.conv_params.kernel_size", "required; e.g. [3, 5, 5]")
    _check_size3(block["conv_params"]["kernel_size"], source, f"{key}.conv_params.kernel_size")
    block["norm_type"] = block["norm_type"] or "none"
    block["act_type"] = block["act_type"] or "none"
    block["norm_params"] = check_mapping(
        block["norm_params"], NORM_PARAMS, source, f"{key}.norm_params", "norm_params"
    )
    block["act_params"] = check_mapping(
        block["act_params"], ACT_PARAMS, source, f"{key}.act_params", "act_params"
    )
    block["pool_params"] = check_pool(block["pool_params"], source, f"{key}.pool_params")
    for step in block["order"]:
        if step not in ORDER_STEPS:
            allowed = ", ".join(ORDER_STEPS)
            raise ConfigError(source, f"{key}.order", f"{step!r} not allowed; allowed: {allowed}")
    return block


def check_pool(raw: Any, source: str, key: str) -> dict:
    """Pool params; ``null``/``'none'`` mean no pooling."""
    if raw is None or (isinstance(raw, str) and raw.lower() == "none"):
        raw = {"type": "none"}
    pool = check_mapping(raw, POOL_PARAMS, source, key, "pool_params")
    if pool["type"] in ("max", "avg", "adaptivemax", "adaptiveavg") and pool["kernel_size"] is None:
        raise ConfigError(source, f"{key}.kernel_size", f"required for pool type {pool['type']!r}")
    return pool


def _check_size3(value: Any, source: str, key: str) -> None:
    if isinstance(value, list) and len(value) != 3:
        raise ConfigError(source, key, f"expected [T, H, W] (3 ints), got {value!r}")
