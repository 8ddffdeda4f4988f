"""The structured sections of a dataset config: ``sampling``, ``keys_lags``, ``transforms``,
``datafilters``.

Each check takes the section as read from YAML, the file it came from and returns the
section in canonical form (defaults filled in, lags as lists or ints), or raises one
``ConfigError`` naming the file, the dotted key and the allowed values. Op lists are checked
by the op vocabulary (``ops.check_op_list``), so an op typo fails here, before any data is
read, exactly as it would at training time.
"""

from __future__ import annotations

from typing import Any

from trainer.contract.errors import ConfigError

SAMPLING_KEYS = {
    "source_rate": "bins per second of the recordings (VisionCore: 240)",
    "target_rate": "bins per second of the training samples; source_rate / target_rate "
    "must be a whole number",
}
TRANSFORM_KEYS = {
    "source": "covariate the ops start from (default: the transform's name)",
    "ops": "ordered list of ops, each {name: params}",
    "expose_as": "name of the result in a sample (default: the transform's name)",
    "concatenate": "true: results with the same expose_as join on the last axis, in order",
    "keys_lags": "lags of expose_as (merged into the top-level keys_lags)",
}
DATAFILTER_KEYS = {
    "ops": "list of datafilter ops, AND-combined",
    "expose_as": "name of the mask (default: the datafilter's name; dfs is the one used)",
    "keys_lags": "lags of expose_as (merged into the top-level keys_lags)",
}
# Sample keys that are always there: the responses and the validity mask.
REQUIRED_SAMPLE_KEYS = ("robs", "dfs")


def _mapping(value: Any, file: str, key: str, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(file, key, f"must be a mapping ({what}), got {value!r}")
    return value


def unknown_keys(data: dict[str, Any], allowed: Any, file: str, prefix: str = "") -> None:
    """The first key not in ``allowed``, as one line listing the allowed keys."""
    for key in data:
        if key not in allowed:
            raise ConfigError(file, f"{prefix}{key}", f"unknown field; allowed: {sorted(allowed)}")


def positive_number(value: Any, file: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(file, key, f"must be a positive number, got {value!r}")
    return float(value)


def check_sampling(section: Any, file: str) -> dict[str, float] | None:
    """``{source_rate, target_rate}`` or None (no resampling: the recordings' own rate)."""
    if section is None:
        return None
    _mapping(section, file, "sampling", "source_rate, target_rate")
    unknown_keys(section, SAMPLING_KEYS, file, "sampling.")
    for key in SAMPLING_KEYS:
        if key not in section:
            raise ConfigError(file, f"sampling.{key}", f"required ({SAMPLING_KEYS[key]})")
    source = positive_number(section["source_rate"], file, "sampling.source_rate")
    target = positive_number(section["target_rate"], file, "sampling.target_rate")
    factor = source / target
    if factor < 1 or abs(factor - round(factor)) > 1e-9:
        raise ConfigError(
            file,
            "sampling.target_rate",
            f"{target:g} Hz: source_rate / target_rate = {factor:g} must be a whole number >= 1",
        )
    return {"source_rate": source, "target_rate": target}


def check_lags(value: Any, file: str, key: str) -> int | list[int]:
    """A lag (int >= 0: one value, no lag axis) or a non-empty list of distinct lags >= 0
    (a lag axis in the listed order; VisionCore's: index 0 is the first listed lag)."""
    what = "an integer >= 0 or a non-empty list of distinct integers >= 0"
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ConfigError(file, key, f"must be {what}, got {value!r}")
        return value
    if not isinstance(value, list) or not value:
        raise ConfigError(file, key, f"must be {what}, got {value!r}")
    for lag in value:
        if isinstance(lag, bool) or not isinstance(lag, int) or lag < 0:
            raise ConfigError(file, key, f"must be {what}; {lag!r} is not")
    if len(set(value)) != len(value):
        raise ConfigError(file, key, f"lags must be distinct, got {value}")
    return list(value)


def check_keys_lags(section: Any, file: str) -> dict[str, int | list[int]]:
    """Every sample key with its lags; ``robs`` and ``dfs`` are required."""
    _mapping(section, file, "keys_lags", "sample key: lag or list of lags")
    lags = {str(key): check_lags(value, file, f"keys_lags.{key}") for key, value in section.items()}
    for key in REQUIRED_SAMPLE_KEYS:
        if key not in lags:
            raise ConfigError(file, f"keys_lags.{key}", "required (robs: 0, dfs: 0 as VisionCore)")
    return lags


def _op_list(ops: Any, where: str, kind: str) -> list[dict[str, Any]]:
    from trainer.configs.dataset_schema.ops import check_op_list

    return check_op_list(ops if ops is not None else [], where, kind)


def check_transforms(section: Any, file: str) -> dict[str, dict[str, Any]]:
    """Each transform with ``source``, ``ops``, ``expose_as``, ``concatenate`` filled in."""
    if section is None:
        return {}
    _mapping(section, file, "transforms", "name: {source, ops, expose_as, concatenate}")
    out = {}
    for name, spec in section.items():
        key = f"transforms.{name}"
        _mapping(spec, file, key, "source, ops, expose_as, concatenate")
        unknown_keys(spec, TRANSFORM_KEYS, file, f"{key}.")
        for field in ("source", "expose_as"):
            if field in spec and (not isinstance(spec[field], str) or not spec[field]):
                raise ConfigError(file, f"{key}.{field}", f"must be a name, got {spec[field]!r}")
        concatenate = spec.get("concatenate", False)
        if not isinstance(concatenate, bool):
            raise ConfigError(
                file, f"{key}.concatenate", f"must be true or false, not {concatenate!r}"
            )
        out[str(name)] = {
            "source": spec.get("source", str(name)),
            "ops": _op_list(spec.get("ops"), f"{file}: {key}.ops", "transform"),
            "expose_as": spec.get("expose_as", str(name)),
            "concatenate": concatenate,
        }
        if "keys_lags" in spec:
            out[str(name)]["keys_lags"] = check_lags(spec["keys_lags"], file, f"{key}.keys_lags")
    _check_concatenation(out, file)
    return out


def _check_concatenation(transforms: dict[str, dict[str, Any]], file: str) -> None:
    """An ``expose_as`` is either one plain transform or a group of concatenated ones."""
    kinds: dict[str, set[bool]] = {}
    for spec in transforms.values():
        kinds.setdefault(spec["expose_as"], set()).add(spec["concatenate"])
    for expose_as, seen in kinds.items():
        plain = sum(
            1 for s in transforms.values() if s["expose_as"] == expose_as and not s["concatenate"]
        )
        if len(seen) > 1 or plain > 1:
            raise ConfigError(
                file,
                "transforms",
                f"several transforms expose {expose_as!r}: set concatenate: true on all of them "
                "to join them on the last axis, or expose them under different names",
            )


def check_datafilters(section: Any, file: str) -> dict[str, dict[str, Any]]:
    """Each datafilter with ``ops`` and ``expose_as`` filled in."""
    if section is None:
        return {}
    _mapping(section, file, "datafilters", "name: {ops, expose_as}")
    out = {}
    for name, spec in section.items():
        key = f"datafilters.{name}"
        _mapping(spec, file, key, "ops, expose_as")
        unknown_keys(spec, DATAFILTER_KEYS, file, f"{key}.")
        expose_as = spec.get("expose_as", str(name))
        if not isinstance(expose_as, str) or not expose_as:
            raise ConfigError(file, f"{key}.expose_as", f"must be a name, got {expose_as!r}")
        out[str(name)] = {
            "ops": _op_list(spec.get("ops"), f"{file}: {key}.ops", "datafilter"),
            "expose_as": expose_as,
        }
        if "keys_lags" in spec:
            out[str(name)]["keys_lags"] = check_lags(spec["keys_lags"], file, f"{key}.keys_lags")
    return out


def merged_keys_lags(
    keys_lags: dict[str, int | list[int]],
    transforms: dict[str, dict[str, Any]],
    datafilters: dict[str, dict[str, Any]],
) -> dict[str, int | list[int]]:
    """Top-level ``keys_lags`` plus every transform's/datafilter's own (VisionCore merges
    them the same way: a section's lags win for its ``expose_as``)."""
    merged = dict(keys_lags)
    for spec in [*transforms.values(), *datafilters.values()]:
        if "keys_lags" in spec:
            merged[spec["expose_as"]] = spec["keys_lags"]
    return merged
