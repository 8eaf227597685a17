"""Package exports imported on first use, so that ``dbkeeper --help`` and the other
quick commands do not pay for pydantic, psycopg or Alembic they never touch.

A package lists its exports once, as ordinary imports under ``if TYPE_CHECKING:`` (what
type checkers and readers see), and ends with ``__getattr__ = lazy_exports(__name__,
__file__)``: the first ``from package import name`` reads those import statements from
the package's source and imports the one module that defines ``name``.
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _exports_of(source: str) -> dict[str, str]:
    """``{exported name: module}`` from the ``from M import N`` statements under
    ``if TYPE_CHECKING:`` at the top level of ``source``."""
    found: dict[str, str] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for statement in node.body:
                if (
                    isinstance(statement, ast.ImportFrom)
                    and statement.module
                    and not statement.level
                ):
                    for alias in statement.names:
                        found[alias.asname or alias.name] = statement.module
    return found


def lazy_exports(package: str, file: str) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``package`` (whose source is ``file``)."""

    @cache
    def exports() -> dict[str, str]:
        return _exports_of(Path(file).read_text(encoding="utf-8"))

    def __getattr__(name: str) -> object:
        module = exports().get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # later lookups skip this function
        return value

    return __getattr__
