"""Whether a stimulus's ops are a per-pixel affine map, so the stim can stay uint8.

Issue 19's transfer path ships uint8 frames and decodes ``float32(u) * scale + offset`` on
the device. That is only right when the ops map each pixel value alone and linearly:
``pixelnorm``, ``mul``, ``unsqueeze`` (shape only) and ``cast: float32`` (the pipeline is
float32 already). Anything else (a temporal filter, whitening, a cast to another dtype)
makes the derived stim genuinely new data.
"""

from __future__ import annotations

from typing import Any

from trainer.configs.dataset_schema.ops import check_op_list


def affine_stim_codec(ops: list[Any]) -> tuple[float, float] | None:
    """(scale, offset) with ``ops(u) == float32(u) * scale + offset`` for uint8 ``u``, up to
    float32 rounding; ``None`` when an op is not per-pixel affine. ``ops`` raw or resolved."""
    scale, offset = 1.0, 0.0
    for entry in check_op_list(ops, "stim: ops", "transform"):
        name, params = next(iter(entry.items()))
        if name == "pixelnorm":
            scale, offset = scale / 255.0, (offset - 127.0) / 255.0
        elif name == "mul":
            scale, offset = scale * params["factor"], offset * params["factor"]
        elif name == "unsqueeze" or (name == "cast" and params["dtype"] == "float32"):
            continue
        else:
            return None
    return scale, offset
