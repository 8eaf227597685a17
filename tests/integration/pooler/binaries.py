"""The pgbouncers the pooler tests run on: Debian's and the newer one ``make tools`` builds.

Tests that must hold on both request ``pgbouncer_binary`` and are parametrized with
``on_both_pgbouncers``; everything else gets ``find_pgbouncer()`` (``DBKEEPER_PGBOUNCER``
chooses). The newer one is required or skipped by ``tests.tool_binaries``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dbkeeper.pooler.local import find_pgbouncer
from tests.tool_binaries import TOOLS_DIR, require_binary

SYSTEM_PGBOUNCER = Path("/usr/sbin/pgbouncer")  # Debian 12's 1.18
BUILT_PGBOUNCER = TOOLS_DIR / "pgbouncer-1.24" / "bin" / "pgbouncer"  # tools/build_pgbouncer.sh

_BINARIES = {
    "system": (SYSTEM_PGBOUNCER, "the system pgbouncer", "install the pgbouncer package"),
    "1.24": (BUILT_PGBOUNCER, "pgbouncer 1.24", "run `make tools` to build it"),
}

on_both_pgbouncers = pytest.mark.parametrize(
    "pgbouncer_binary",
    [pytest.param(name, id=f"pgbouncer-{name}") for name in _BINARIES],
    indirect=True,
)
on_new_pgbouncer = pytest.mark.parametrize(
    "pgbouncer_binary", [pytest.param("1.24", id="pgbouncer-1.24")], indirect=True
)


@pytest.fixture
def pgbouncer_binary(request: pytest.FixtureRequest) -> str:
    """Path of the pgbouncer a test runs on."""
    name = getattr(request, "param", None)
    if name is None:
        return find_pgbouncer()
    path, what, how = _BINARIES[name]
    return str(require_binary(path, what, how))
