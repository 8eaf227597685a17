"""The package's modules import each other without circles.

A circle (a imports b imports a) makes the import order matter, hides layering
mistakes and forces imports into function bodies. Package ``__init__`` modules that
re-export their children are left out: a child importing a sibling through its package
is not a circle between concerns.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import dbkeeper

ROOT = Path(dbkeeper.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in ROOT.rglob("*.py")}
PACKAGES = {_module_name(p) for p in ROOT.rglob("__init__.py")}


def _imports(path: Path) -> Iterator[str]:
    """Every dbkeeper module ``path`` imports, wherever the import statement stands."""
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name.startswith("dbkeeper"):
                yield name


def _graph() -> dict[str, set[str]]:
    return {
        name: {target for target in _imports(path) if target != name and target not in PACKAGES}
        for name, path in MODULES.items()
        if name not in PACKAGES
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_the_imports() -> None:
    graph = _graph()
    assert "dbkeeper.reconcile.passes" in graph["dbkeeper.kopf_glue"]
    assert "dbkeeper.migrate.options" in graph["dbkeeper.migrate.plan"]


def test_no_module_imports_itself_through_others() -> None:
    assert _cycles(_graph()) == []


def test_a_circle_is_found() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
