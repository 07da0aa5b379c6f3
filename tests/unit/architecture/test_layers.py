"""The package's layers import only downwards, with no import cycles (lazy and TYPE_CHECKING imports included).

The layers, bottom to top, are drawn in the README's architecture section; this
test is the source of truth for them.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import queryopt

ROOT = Path(queryopt.__file__).parent

LAYERS: dict[str, int] = {
    "queryopt._version": 0,
    "queryopt.errors": 0,
    "queryopt.result": 0,
    "queryopt.config": 1,
    "queryopt.analysis": 2,
    "queryopt.hints": 3,
    "queryopt.cache": 4,
    "queryopt.recorder": 4,
    "queryopt.schema": 4,
    "queryopt.migrations": 4,
    "queryopt.embedded": 4,
    "queryopt.telemetry": 4,
    "queryopt.report": 5,
    "queryopt.advisor": 5,
    "queryopt.plans": 5,
    "queryopt.optimizer": 6,
    "queryopt.integrations": 7,
    "queryopt": 7,
    "queryopt.cli": 8,
    "queryopt.__main__": 9,
}
"""Each component and its layer: a module may import its own component and components of lower layers."""

MAX_TOP_LEVEL_MODULES = 8


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = ("queryopt", *path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _component(module: str) -> str:
    """The longest entry of LAYERS that ``module`` is or lies in."""
    name = module
    while name:
        if name in LAYERS:
            return name
        name = name.rpartition(".")[0]
    raise AssertionError(f"{module} belongs to no layer: add its package to LAYERS (and to the README)")


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> Iterator[str]:
    """Every queryopt module ``module`` imports, wherever the import statement stands."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for name in names:
            target = _resolve(name)
            if target is not None and target != module and not module.startswith(target + "."):
                yield target


GRAPH = {module: set(imports_of(module)) for module in MODULES}


def test_every_module_belongs_to_a_layer() -> None:
    for module in MODULES:
        _component(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_run_only_downwards(module: str) -> None:
    own = _component(module)
    upward = [
        target
        for target in sorted(GRAPH[module])
        if (other := _component(target)) != own and LAYERS[other] >= LAYERS[own] and own != "queryopt"
    ]
    assert not upward, f"{module} (layer {LAYERS[own]}) imports from its own layer or above: {upward}"


def test_the_public_face_imports_only_lower_layers_and_itself() -> None:
    upward = [t for t in GRAPH["queryopt"] if LAYERS[_component(t)] > LAYERS["queryopt"]]
    assert not upward


def test_no_import_cycles() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(module: str) -> None:
        index[module] = low[module] = counter[0]
        counter[0] += 1
        stack.append(module)
        on_stack.add(module)
        for target in GRAPH[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    assert not cycles, f"import cycles: {cycles}"


def test_the_top_level_holds_only_small_leaves() -> None:
    top = sorted(path.name for path in ROOT.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


def test_only_one_class_is_called_query_stats() -> None:
    defining = [
        module
        for module, path in MODULES.items()
        if any(isinstance(n, ast.ClassDef) and n.name == "QueryStats" for n in ast.walk(ast.parse(path.read_text())))
    ]
    assert defining == ["queryopt.optimizer.live_stats"]
