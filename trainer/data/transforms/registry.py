"""What an op may know, and the registries that map op names to op builders.

An op builder takes the op's resolved parameters (``trainer.configs.dataset_schema.ops``
fills every default) and the op's error location, and returns ``fn(x, ctx) -> y``: numpy
in, numpy out, the time axis first. ``ctx`` carries what VisionCore's ops read from the
dataset config or the session besides their input (the kept units, the rate, the trial
structure); nothing else is global.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from trainer.configs.dataset_schema.ops import split_where
from trainer.contract.errors import ConfigError
from trainer.recordings.session import RawSession


@dataclass(frozen=True)
class OpContext:
    """The session and the resampled trial structure an op may consult."""

    session: RawSession
    cids: np.ndarray  # the units the dataset config keeps (session file ``cids``)
    rate_hz: float  # rate of the arrays after sampling
    t_bins: np.ndarray  # (T,) seconds, after sampling
    trial_inds: np.ndarray  # (T,) after sampling
    dpi_valid: np.ndarray  # (T,) bool after sampling

    def kept_columns(self, where: str) -> np.ndarray:
        """Column of each kept unit in the session's ``robs`` (kept ``cids`` -> positions).

        VisionCore indexes ``robs[:, cids]`` because its recordings hold every cluster in
        id order; ours name each column's unit (``session.cids``), so the ids are looked up.
        """
        session_cids = np.asarray(self.session.cids)
        position = {int(cid): col for col, cid in enumerate(session_cids)}
        missing = [int(c) for c in np.asarray(self.cids) if int(c) not in position]
        if missing:
            source, key = split_where(where)
            shown = ", ".join(map(str, missing[:8])) + (" ..." if len(missing) > 8 else "")
            raise ConfigError(
                source or self.session.name,
                key or "cids",
                f"units {shown} are not in session {self.session.name}"
                f" ({len(session_cids)} units, ids {session_cids.min()}..{session_cids.max()})",
            )
        return np.array([position[int(c)] for c in np.asarray(self.cids)], dtype=np.int64)


Transform = Callable[[np.ndarray, OpContext], np.ndarray]
Datafilter = Callable[[Mapping[str, np.ndarray], OpContext], np.ndarray]
TransformBuilder = Callable[[dict[str, Any], str], Transform]
DatafilterBuilder = Callable[[dict[str, Any], str], Datafilter]

TRANSFORM_REGISTRY: dict[str, TransformBuilder] = {}
DATAFILTER_REGISTRY: dict[str, DatafilterBuilder] = {}


def transform_op(name: str) -> Callable[[TransformBuilder], TransformBuilder]:
    """Register a transform op builder under its config name."""

    def register(builder: TransformBuilder) -> TransformBuilder:
        TRANSFORM_REGISTRY[name] = builder
        return builder

    return register


def datafilter_op(name: str) -> Callable[[DatafilterBuilder], DatafilterBuilder]:
    """Register a datafilter op builder under its config name."""

    def register(builder: DatafilterBuilder) -> DatafilterBuilder:
        DATAFILTER_REGISTRY[name] = builder
        return builder

    return register


def op_error(where: str, message: str) -> ConfigError:
    """A one-line error about the op at ``where`` (``"file: transforms.x.ops[2].diff"``)."""
    source, key = split_where(where)
    return ConfigError(source, key or "ops", message)
