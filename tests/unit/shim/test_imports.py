"""The shim runs as ``python -S -P -m pycontainerd.shim``: the stdlib, msgpack
and ``api.errdefs`` are all it may import (its own modules aside). Every import
statement counts, also the ones under ``if TYPE_CHECKING`` or inside a function.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pycontainerd.shim

SHIM = Path(pycontainerd.shim.__file__).parent
ALLOWED = {"msgpack", "pycontainerd.api.errdefs"}


def _imports(path: Path) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level >= 2:  # out of the package
            found.append((node.lineno, f"pycontainerd.{node.module or ''}"))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "pycontainerd.api":
                found += [(node.lineno, f"pycontainerd.api.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, node.module))
    return found


def _allowed(name: str) -> bool:
    top = name.partition(".")[0]
    return top in sys.stdlib_module_names or name in ALLOWED or top in ALLOWED


def test_the_shim_imports_only_the_stdlib_msgpack_and_errdefs() -> None:
    outside = [
        f"{path.name}:{line}: {name}"
        for path in sorted(SHIM.glob("*.py"))
        for line, name in _imports(path)
        if not _allowed(name)
    ]
    assert outside == []


def test_the_allowlist_sees_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import attrs\nfrom pycontainerd.api import errdefs, types\n")
    names = [name for _, name in _imports(module) if not _allowed(name)]
    assert names == ["attrs", "pycontainerd.api.types"]
