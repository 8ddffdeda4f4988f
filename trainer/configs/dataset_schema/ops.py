"""The transform and datafilter vocabulary of VisionCore's dataset configs (torch-free).

A dataset config's ``transforms.<name>.ops`` and ``datafilters.<name>.ops`` are lists of
one-key mappings, ``- <op>: <config>``. ``TRANSFORM_OPS``/``DATAFILTER_OPS`` say which ops
exist and what each one's config accepts; ``check_op_list`` turns a raw list into the
resolved one, ``[{op: {param: value, ...}}, ...]`` with every default filled in, or raises
one ``ConfigError`` naming the file, the key (``transforms.eye_vel.ops[3].temporal_basis
.history_bins``) and what is allowed. The trainer builds the ops from exactly this list
(``trainer.data.transforms``) and hashes it for the derived-array cache; the controller
calls the same function before it submits.

Config forms VisionCore's files use, all accepted: a mapping (``diff: {axis: 0}``), a
scalar for the op's main parameter (``unsqueeze: 1``, ``mul: 240``, ``smooth: 1.5``,
``cast: float32``), an empty value (``pixelnorm: {}``), and a list of one-key mappings
(``smooth: [{type: gaussian}, {params: 1.0}]``, in ``multi_basic_120.yaml``; VisionCore
itself crashes on that form, we merge it).

``missing_pct: {theshold: 45}`` (sic) is how nearly every VisionCore config spells it.
VisionCore reads only ``threshold`` and so applies its default, 45, whatever the misspelt
key says. We accept ``theshold`` when its value is that default (every VisionCore config)
and reject any other value with an error saying what VisionCore did and how to say what
you mean: a config never silently means something else here than it did there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from trainer.configs.model_schema.components import DA
from trainer.configs.model_schema.fields import ANY, NUMBERS, Field, check, field_line
from trainer.contract.errors import ConfigError

UNUSED = "accepted, unused (as in VisionCore)"
CAST_DTYPES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "bool", "uint8")
MISSING_PCT_DEFAULT = 45.0
MISSPELT_THRESHOLD = "theshold"


@dataclass(frozen=True)
class OpSpec:
    """One op: its parameters, the one a scalar config sets, and what it computes."""

    params: dict[str, Field]
    doc: str
    scalar: str | None = None  # ``op: <value>`` sets this parameter
    required: tuple[str, ...] = field(default=())


TEMPORAL_BASIS = {
    "num_delta_funcs": Field(int, 0, doc="delta functions at lags 1, 2, ..."),
    "num_cosine_funcs": Field(int, 10, doc="raised cosines"),
    "history_bins": Field(int, 32, doc="kernel length in bins (one zero bin is added)"),
    "log_spacing": Field(bool, True, doc="peaks evenly spaced in log time"),
    "peak_range_ms": Field(NUMBERS, [5, 100], doc="[first, last] peak, ms of bin_size_ms bins"),
    "bin_size_ms": Field(float, 5.0, doc="ms per kernel bin (VisionCore: not the data rate)"),
    "normalize": Field(bool, True, doc="unit L2 norm per basis function"),
    "orthogonalize": Field(bool, False, doc="Gram-Schmidt, in order"),
    "causal": Field(bool, True, doc="true: past bins only; false: centred window"),
    "sampling_rate": Field(float, 240.0, doc=UNUSED),
    "batch_norm": Field(bool, False, doc="standardise each basis output (training-mode BN)"),
    "chomp": Field(int, None, choices=(0,), doc="only null/0: dropping bins would misalign"),
    "in_channels": Field(ANY, None, doc=UNUSED),
}
DACONES = {
    "sampling_rate": Field(float, 240.0, doc="Hz of the filters (VisionCore: not the data rate)"),
    # the photoreceptor model's parameters are the ``da`` frontend's (one definition)
    **{k: DA[k] for k in ("alpha", "beta", "gamma", "tau_y_ms", "tau_z_ms", "n_y", "n_z")},
    "filter_length": Field(int, 200, doc="bins"),
    "learnable_params": Field(bool, False, doc=UNUSED),
    "height": Field(ANY, None, doc=UNUSED),
    "width": Field(ANY, None, doc=UNUSED),
}
TRANSFORM_OPS: dict[str, OpSpec] = {
    "fftwhitening": OpSpec(
        {"f_0": Field(float, 0.4), "n": Field(float, 4.0)},
        "3-D FFT filter |f| exp(-(|f|/f_0)^n) over (time, height, width)",
    ),
    "pixelnorm": OpSpec({}, "(x - 127) / 255"),
    "diff": OpSpec(
        {"axis": Field(int, 0, minimum=None)}, "x[t] - x[t-1], first bin 0", scalar="axis"
    ),
    "mul": OpSpec({"factor": Field(float, 1.0, minimum=None)}, "x * factor", scalar="factor"),
    "temporal_basis": OpSpec(TEMPORAL_BASIS, "project time onto raised cosines (channels x K)"),
    "splitrelu": OpSpec(
        {
            "split_dim": Field(int, 1, minimum=None),
            "trainable_gain": Field(bool, False, doc=UNUSED),
        },
        "[relu(x), relu(-x)] along split_dim (doubles it)",
    ),
    "symlog": OpSpec({}, "sign(x) log(1 + |x|)"),
    "maxnorm": OpSpec({}, "x / max|x| over the whole array"),
    "dacones": OpSpec(DACONES, "dynamical-adaptation cone model (Clark et al. 2013), per pixel"),
    "unsqueeze": OpSpec({"axis": Field(int, 0, minimum=None)}, "new axis of size 1", scalar="axis"),
    "cast": OpSpec({"dtype": Field(str, "float32", CAST_DTYPES)}, "convert dtype", scalar="dtype"),
    "select_units": OpSpec(
        {"indices": Field(ANY, None, doc='"cids" (the session file\'s units) or column indices')},
        "keep these units (last axis)",
        required=("indices",),
    ),
    "smooth": OpSpec(
        {"type": Field(str, "gaussian", ("gaussian",)), "params": Field(float, 1.0)},
        "Gaussian smoothing over time (sigma = params bins, reflect padding)",
        scalar="params",
    ),
}
DATAFILTER_OPS: dict[str, OpSpec] = {
    "valid_nlags": OpSpec(
        {"n_lags": Field(int, 1)},
        "bins whose n_lags-bin history is inside one trial with the eye tracked",
        scalar="n_lags",
    ),
    "missing_pct": OpSpec(
        {"threshold": Field(float, MISSING_PCT_DEFAULT)},
        "per unit: missing-spike % below threshold (clear multi-units always kept)",
        scalar="threshold",
    ),
}
KINDS = {"transform": TRANSFORM_OPS, "datafilter": DATAFILTER_OPS}


def split_where(where: str) -> tuple[str, str]:
    """``"file: key.path"`` -> (file, key path); the key is empty when ``where`` has none."""
    source, sep, key = where.rpartition(": ")
    return (source, key) if sep else (where, "")


def op_key(where: str, index: int, name: str | None = None, param: str | None = None) -> str:
    """The dotted key of an op (or one of its parameters) inside the list at ``where``."""
    _, base = split_where(where)
    key = f"{base}[{index}]" if base else f"ops[{index}]"
    return ".".join(part for part in (key, name, param) if part)


def check_op_list(ops: Any, where: str, kind: str) -> list[dict[str, dict[str, Any]]]:
    """Resolve a raw op list (``kind``: "transform" or "datafilter").

    ``where`` is ``"<file>: <key of the list>"`` (``"a.yaml: transforms.eye_vel.ops"``).
    Returns ``[{op: params}, ...]`` with defaults filled in; raises ``ConfigError``.
    """
    vocabulary = KINDS[kind]
    source, base = split_where(where)
    if ops is None:
        return []
    if not isinstance(ops, list):
        raise ConfigError(source, base or "ops", f"expected a list of ops, got {ops!r}")
    return [_check_op(entry, vocabulary, where, index, kind) for index, entry in enumerate(ops)]


def _check_op(
    entry: Any, vocabulary: Mapping[str, OpSpec], where: str, index: int, kind: str
) -> dict[str, dict[str, Any]]:
    source, _ = split_where(where)
    if isinstance(entry, str):  # ``- pixelnorm``: an op with its defaults
        entry = {entry: None}
    if not isinstance(entry, Mapping) or len(entry) != 1:
        raise ConfigError(
            source, op_key(where, index), f"expected one '<op>: <config>' mapping, got {entry!r}"
        )
    name, raw = next(iter(entry.items()))
    if name not in vocabulary:
        allowed = ", ".join(vocabulary)
        raise ConfigError(
            source, op_key(where, index, str(name)), f"unknown {kind} op; allowed: {allowed}"
        )
    spec = vocabulary[name]
    config = _config_mapping(raw, spec, source, op_key(where, index, name))
    if name == "missing_pct":
        config = _spelled_threshold(config, source, op_key(where, index, name))
    return {name: _check_params(config, spec, source, where, index, name)}


def _config_mapping(raw: Any, spec: OpSpec, source: str, key: str) -> dict[str, Any]:
    """The op's config as a mapping, whichever of VisionCore's forms it was written in."""
    if raw is None:
        return {}
    if isinstance(raw, Mapping):
        return dict(raw)
    if isinstance(raw, list) and all(isinstance(i, Mapping) and len(i) == 1 for i in raw):
        merged: dict[str, Any] = {}
        for item in raw:
            merged.update(item)
        return merged
    if spec.scalar is not None and not isinstance(raw, list):
        return {spec.scalar: raw}
    forms = "a mapping or a list of one-key mappings"
    if spec.scalar is not None:
        forms += f", or a {spec.params[spec.scalar].describe()} ({spec.scalar})"
    raise ConfigError(source, key, f"expected {forms}, got {raw!r}")


def _spelled_threshold(config: dict[str, Any], source: str, key: str) -> dict[str, Any]:
    """Accept VisionCore's ``theshold`` where it meant what VisionCore did (see module doc)."""
    if MISSPELT_THRESHOLD not in config:
        return config
    value = config.pop(MISSPELT_THRESHOLD)
    if "threshold" in config:
        raise ConfigError(source, f"{key}.{MISSPELT_THRESHOLD}", "give threshold only once")
    if value != MISSING_PCT_DEFAULT:
        raise ConfigError(
            source,
            f"{key}.{MISSPELT_THRESHOLD}",
            f"VisionCore ignores this misspelt key and applies threshold"
            f" {MISSING_PCT_DEFAULT:g}, not {value!r}; write 'threshold: {value}' to use"
            f" {value!r} or 'threshold: {MISSING_PCT_DEFAULT:g}' to match VisionCore",
        )
    return {**config, "threshold": value}


def _check_params(
    config: dict[str, Any], spec: OpSpec, source: str, where: str, index: int, name: str
) -> dict[str, Any]:
    for param in config:
        if param not in spec.params:
            allowed = ", ".join(spec.params) or "(none)"
            raise ConfigError(
                source,
                op_key(where, index, name, str(param)),
                f"unknown parameter of {name}; allowed: {allowed}",
            )
    for param in spec.required:
        if config.get(param) is None:
            raise ConfigError(
                source, op_key(where, index, name, param), f"required: {spec.params[param].doc}"
            )
    resolved = {
        param: check(config.get(param, f.default), f, source, op_key(where, index, name, param))
        for param, f in spec.params.items()
    }
    _check_special(name, resolved, source, lambda p: op_key(where, index, name, p))
    return resolved


def _check_special(name: str, params: dict[str, Any], source: str, key: Any) -> None:
    """Rules one field cannot state (value shapes, cross-field limits)."""
    if name == "select_units":
        indices = params["indices"]
        is_list = isinstance(indices, list) and all(
            isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in indices
        )
        if indices != "cids" and not is_list:
            raise ConfigError(
                source,
                key("indices"),
                f'expected "cids" or a list of column indices (ints >= 0), got {indices!r}',
            )
    if name == "temporal_basis":
        peaks = params["peak_range_ms"]
        if len(peaks) != 2:
            raise ConfigError(source, key("peak_range_ms"), f"expected [first, last], got {peaks}")
        if params["num_delta_funcs"] + params["num_cosine_funcs"] == 0:
            raise ConfigError(source, key("num_cosine_funcs"), "no basis functions at all")
    if name in ("fftwhitening",) and params["f_0"] <= 0:
        raise ConfigError(source, key("f_0"), f"must be > 0, got {params['f_0']}")
    if name == "valid_nlags" and params["n_lags"] < 1:
        raise ConfigError(source, key("n_lags"), f"must be >= 1, got {params['n_lags']}")
    if name == "dacones" and params["filter_length"] < 1:
        raise ConfigError(source, key("filter_length"), "must be >= 1")


def ops_reference_markdown() -> str:
    """The op vocabulary as markdown (a section of the dataset-config reference)."""
    lines = [
        "## transform ops (`transforms.<name>.ops`)",
        "",
        "Each op is `- <op>: <config>`: a mapping of the parameters below, a scalar for the",
        "parameter marked *scalar*, nothing (defaults), or a list of one-key mappings.",
        "The source array is cast to float32 first, as VisionCore does.",
        "",
    ]
    lines += _op_lines(TRANSFORM_OPS)
    lines += [
        "",
        "## datafilter ops (`datafilters.<name>.ops`, AND-combined)",
        "",
        f"`missing_pct: {{{MISSPELT_THRESHOLD}: {MISSING_PCT_DEFAULT:g}}}` (VisionCore's spelling)"
        f" is accepted; any other `{MISSPELT_THRESHOLD}` value is an error, because VisionCore"
        f" ignores that key and applies {MISSING_PCT_DEFAULT:g}.",
        "",
    ]
    lines += _op_lines(DATAFILTER_OPS)
    return "\n".join(lines) + "\n"


def _op_lines(vocabulary: Mapping[str, OpSpec]) -> list[str]:
    lines = []
    for name, spec in vocabulary.items():
        lines.append(f"- **`{name}`** — {spec.doc}")
        for param, f in spec.params.items():
            marks = [
                m
                for m, on in (
                    ("scalar", param == spec.scalar),
                    ("required", param in spec.required),
                )
                if on
            ]
            suffix = f" ({', '.join(marks)})" if marks else ""
            lines.append(f"  - {field_line(param, f)}{suffix}")
    return lines
