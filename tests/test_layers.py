"""The layout rules: no module imports from a layer above it; packages stay small.

Layers, bottom first. A module may import its own layer and any layer below it, never one
above — including imports inside functions, which are read here too. ``trainer.contract``
and ``trainer.configs`` are the bottom of both packages: the controller shares the
exit-code, result-line and progress-line clauses of the job contract and the
config-name rule with the trainer (and nothing else of it: no torch on a laptop).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

LAYERS: list[list[str]] = [
    [
        "trainer.contract",
        "trainer.configs",
        "trainer.__init__",
        "corejob.errors",
        "corejob.__init__",
        "corejob.cli_help",
    ],
    [
        "trainer.recordings",
        "trainer.synthetic",
        "trainer.checkpoints",
        "trainer.quiet_logs",
        "corejob.job",
    ],
    ["trainer.data", "corejob.backends"],
    ["trainer.optim", "corejob.sweep", "corejob.results", "corejob.catalog"],
    ["trainer.models"],
    ["trainer.callbacks", "trainer.video"],
    ["trainer.checkpoint_commands"],  # evaluate/predict arguments; trainer.cli imports it
    ["trainer.run", "trainer.plots", "trainer.cli", "trainer.__main__"],
    ["trainer.video.cli", "trainer.video.train"],  # entry point over trainer.cli
    ["corejob.cli", "corejob.cli_parser", "corejob.submission", "corejob.__main__"],
]
# What the controller may use of the trainer package (no torch behind these).
CONTROLLER_MAY_IMPORT = (
    "trainer.configs",
    "trainer.contract.errors",
    "trainer.contract.exit_codes",
    "trainer.contract.flag_types",
    "trainer.contract.progress",
    "trainer.contract.result",
)
MAX_MODULES_PER_PACKAGE = 8


def layer_of(module: str) -> int:
    matches = [
        (len(prefix), index)
        for index, prefixes in enumerate(LAYERS)
        for prefix in prefixes
        if module == prefix or module.startswith(prefix + ".")
    ]
    assert matches, f"{module} is in no layer: add it to LAYERS"
    return max(matches)[1]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts)


def project_imports(path: Path) -> list[str]:
    """Every ``trainer``/``corejob`` module this file imports, at any depth of the code."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            found += [f"{node.module}.{alias.name}" for alias in node.names]
    return [name for name in found if name.split(".")[0] in ("trainer", "corejob")]


def resolve(name: str) -> str | None:
    """The module an imported name refers to (``from a import b``: module a.b, or a)."""
    candidate = REPO / Path(*name.split("."))
    if candidate.with_suffix(".py").is_file() or (candidate / "__init__.py").is_file():
        return name if candidate.with_suffix(".py").is_file() else f"{name}.__init__"
    return None


SOURCES = sorted((REPO / "trainer").rglob("*.py")) + sorted((REPO / "corejob").rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_module_imports_from_a_layer_above_it(path: Path) -> None:
    importer = module_name(path)
    problems = []
    for name in project_imports(path):
        target = resolve(name)
        if target is None:
            continue  # ``from package import Name``: the package itself is also listed
        if importer.startswith("corejob") and target.startswith("trainer"):
            if not target.startswith(CONTROLLER_MAY_IMPORT):
                problems.append(f"{target}: the controller may only use {CONTROLLER_MAY_IMPORT}")
            continue
        if layer_of(target) > layer_of(importer):
            problems.append(f"{target} (layer {layer_of(target)} > {layer_of(importer)})")
    assert not problems, f"{importer} imports from above: {problems}"


def packages() -> list[Path]:
    return sorted(
        init.parent
        for root in ("trainer", "corejob")
        for init in (REPO / root).rglob("__init__.py")
    )


@pytest.mark.parametrize("package", packages(), ids=lambda p: str(p.relative_to(REPO)))
def test_each_package_has_at_most_eight_modules_at_its_top_level(package: Path) -> None:
    modules = [p.name for p in package.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    assert len(modules) <= MAX_MODULES_PER_PACKAGE, f"{package}: {sorted(modules)}"


def test_the_layer_rule_catches_an_upward_import(tmp_path: Path) -> None:
    """The check itself works: data importing a callback is reported."""
    assert layer_of("trainer.callbacks.curriculum") > layer_of("trainer.data.datamodule")
    assert layer_of("corejob.cli") > layer_of("corejob.backends.local.backend")
    source = tmp_path / "probe.py"
    source.write_text("def f():\n    from trainer.callbacks.curriculum import X\n")
    assert project_imports(source) == [
        "trainer.callbacks.curriculum",
        "trainer.callbacks.curriculum.X",
    ]
