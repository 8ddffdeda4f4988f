"""Chart values from the command line, in Helm's own dialect (the only dialect corejob has).

``-f/--values FILE``, ``--set-json``, ``--set`` and ``--set-string`` mean exactly what they
mean to ``helm install``: the expressions are parsed by Helm's own parser (helm-python-sdk,
offline), so ``--set 'trainer.extraArgs={--seed,3}'`` gives a list, ``--set a=1`` an
integer and ``--set-string a=1`` the string ``"1"``. They are merged in Helm's order
(files, then JSON, then ``--set``, then ``--set-string``; later wins). ``corejob submit``,
``corejob render``, ``corejob sweep`` and every ``make`` target that renders go through
:func:`values_from_sources`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from corejob.errors import UsageError

Values = dict[str, Any]
DEFAULTS_ENV = "COREJOB_VALUES"
PROJECT_DEFAULTS = Path(".corejob") / "values.yaml"
# The claim local and container jobs share for /data (a directory under the runs dir).
LOCAL_DATA_CLAIM = "corejob-data"


def backend_defaults(backend: str | None) -> Values:
    """Values a backend implies, below every source the user gives (files, --set).

    Local and container jobs mount one shared data claim instead of the chart's per-job
    emptyDir, so the synthetic sessions are generated once per machine, not once per job
    (the generator writes each session atomically, so concurrent jobs may race safely). On
    a cluster nothing is implied: the site's values say which claim holds the data.
    """
    if backend in ("local", "container"):
        return {"data": {"existingClaim": LOCAL_DATA_CLAIM}}
    return {}


def default_value_files(env: Mapping[str, str], cwd: Path) -> tuple[str, ...]:
    """Site defaults, found the way kubectl finds its config, lowest precedence first.

    ``$COREJOB_VALUES`` (a ``:``-separated list of values files) replaces the search;
    otherwise the user's ``$XDG_CONFIG_HOME/corejob/values.yaml`` (``~/.config/...``)
    and then the project's ``.corejob/values.yaml`` in the working directory are used when
    they exist. They come before every ``-f``, so anything on the command line wins. This
    is where a lab puts its image, service account and claims once, so a cluster submit is
    ``corejob submit -m res_small``.
    """
    listed = env.get(DEFAULTS_ENV)
    if listed is not None:
        return tuple(part for part in listed.split(os.pathsep) if part)
    config_home = Path(env.get("XDG_CONFIG_HOME") or Path(env.get("HOME", "~")) / ".config")
    candidates = [config_home.expanduser() / "corejob" / "values.yaml", cwd / PROJECT_DEFAULTS]
    return tuple(str(path) for path in candidates if path.is_file())


@dataclass(frozen=True)
class ValueSources:
    """What the user passed, in the order Helm applies it."""

    files: tuple[str, ...] = ()
    set_json: tuple[str, ...] = ()
    set: tuple[str, ...] = ()
    set_string: tuple[str, ...] = ()

    def key(self) -> list[str]:
        """Every source as text (sweep ids), file contents included; bare ``--set``
        expressions stay bare so that sweep ids of earlier ``--set``-only sweeps hold."""
        texts = list(self.set)
        texts += [f"-f={_file_text(path)}" for path in self.files]
        texts += [f"--set-json={e}" for e in self.set_json]
        return texts + [f"--set-string={e}" for e in self.set_string]


def merge_values(base: Values, override: Values) -> Values:
    """Deep-merge ``override`` into a copy of ``base``: maps merge, anything else replaces."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_values(merged[key], value)
        else:
            merged[key] = value
    return merged


def image_values(reference: str) -> dict[str, str]:
    """Split an image reference ``repo[:tag][@sha256:...]`` into the chart's ``image`` values."""
    repository, _, digest = reference.partition("@")
    name_start = repository.rfind("/") + 1
    tag = ""
    if ":" in repository[name_start:]:
        repository, _, tag = repository.rpartition(":")
    values = {"repository": repository}
    if tag:
        values["tag"] = tag
    if digest:
        values["digest"] = digest
    return values


def _file_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(f"-f {path}: cannot read values file: {error.strerror}") from None


def read_values_file(path: str) -> Values:
    """One ``-f`` file: a YAML mapping (empty file = no values)."""
    try:
        loaded = yaml.safe_load(_file_text(path))
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" line {where.line + 1}" if where else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise UsageError(f"-f {path}:{line}: invalid YAML: {problem}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise UsageError(
            f"-f {path}: expected a mapping of chart values, got {type(loaded).__name__}"
        )
    return loaded


def _helm() -> Any:
    try:
        import helm_python
    except ImportError:  # pragma: no cover - depends on the environment
        raise UsageError(
            "helm-python-sdk is not installed: pip install 'corejob[controller]'"
        ) from None
    return helm_python


def _parsed(option: str, expression: str, parse: Any, helm: Any) -> Values:
    try:
        return parse(expression)
    except helm.HelmError as error:
        message = " ".join(str(error).split())
        raise UsageError(f"invalid {option} {expression!r}: {message}") from None


def values_from_sources(sources: ValueSources) -> Values:
    """All sources merged in Helm's order; every problem is a one-line UsageError."""
    values: Values = {}
    for path in sources.files:
        values = merge_values(values, read_values_file(path))
    if not (sources.set_json or sources.set or sources.set_string):
        return values
    helm = _helm()
    for option, expressions, parse in (
        ("--set-json", sources.set_json, helm.parse_set_json),
        ("--set", sources.set, helm.parse_set_string),
        ("--set-string", sources.set_string, helm.parse_set_string_values),
    ):
        for expression in expressions:
            values = merge_values(values, _parsed(option, expression, parse, helm))
    return values
