"""The rule for tests that run on a binary ``make tools`` provides: required or skipped.

Such a binary (a newer pgbouncer, another PostgreSQL major) lives under ``.tools/``.
When it is missing, the tests that need it are skipped with a reason that says how to
get it; with ``DBKEEPER_REQUIRE_TOOLS=1`` (``make test`` sets it) they fail instead, so
the full suite can never pass without them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest

REQUIRE_TOOLS_ENV = "DBKEEPER_REQUIRE_TOOLS"
REPO_ROOT = Path(__file__).resolve().parent.parent
TOOLS_DIR = REPO_ROOT / ".tools"


def tools_required() -> bool:
    """Whether a missing tool fails the run instead of skipping its tests."""
    return os.environ.get(REQUIRE_TOOLS_ENV, "").strip() not in ("", "0")


def tool_missing(what: str, path: Path, how: str = "run `make tools`") -> NoReturn:
    """Skip the test needing ``what`` (expected at ``path``), or fail it when tools are required."""
    message = f"{what} is missing ({path} not found): {how}"
    if tools_required():
        pytest.fail(f"{message}; {REQUIRE_TOOLS_ENV} is set, so a missing tool is an error")
    pytest.skip(message)


def require_binary(path: Path, what: str, how: str = "run `make tools`") -> Path:
    """``path`` when it is an executable file; else ``tool_missing``."""
    if path.is_file() and os.access(path, os.X_OK):
        return path
    tool_missing(what, path, how)
