"""No module of pycontainerd imports one that imports it back, however
indirectly: lint-imports' ``acyclic_siblings`` contract checks the imports that
run; this also counts the ones under ``if TYPE_CHECKING`` and inside functions
(a cycle through annotations or lazy imports is a knot all the same).
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Set
from pathlib import Path

import pycontainerd

ROOT = Path(pycontainerd.__file__).parent


def _modules(root: Path) -> dict[str, tuple[Path, bool]]:
    found: dict[str, tuple[Path, bool]] = {}
    for path in root.rglob("*.py"):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    """Every module -> the modules of the package it imports, by any statement
    (and the packages those are in, whose ``__init__`` runs first)."""
    modules = _modules(root)

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, (path, is_package) in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = module.split(".")[: None if is_package else -1]
                    parts = parts[: len(parts) - node.level + 1]
                    base = ".".join([*parts, *([node.module] if node.module else [])])
                names = [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                target = known(name)
                # Importing a.b.c runs a/__init__ and a.b/__init__ first,
                # unless the importer is inside them (they are running already).
                while target and not (module + ".").startswith(target + "."):
                    targets.add(target)
                    target = target.rpartition(".")[0]
        graph[module] = targets
    return graph


def cycles(graph: Mapping[str, Set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component: list[str] = []
            while not component or component[-1] != v:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_one_that_imports_it_back() -> None:
    assert cycles(import_graph(ROOT)) == []


def test_a_cycle_through_type_checking_is_found(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "_a.py").write_text("from ._b import B\n")
    (package / "_b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ._a import A\n"
    )
    (package / "_c.py").write_text("def f():\n    from pkg import _a\n")
    (package / "sub").mkdir()
    (package / "sub" / "__init__.py").write_text("from . import _d\n")
    (package / "sub" / "_d.py").write_text("from .. import _e\n")
    (package / "_e.py").write_text("from .sub._d import D\n")
    assert import_graph(package)["pkg._c"] == {"pkg._a"}
    assert import_graph(package)["pkg._e"] == {"pkg.sub", "pkg.sub._d"}
    assert cycles(import_graph(package)) == [
        ["pkg._a", "pkg._b"],
        ["pkg._e", "pkg.sub", "pkg.sub._d"],
    ]
