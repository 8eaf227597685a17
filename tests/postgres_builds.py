"""Which PostgreSQL build a test run uses: ``pytest --postgres=MAJOR``.

Without the option the tests use the system's PostgreSQL (Debian's 15; see
``dbkeeper.local.postgres.find_pg_bindir``). With it, they use the build
``tools/fetch_postgres.py`` installed into ``.tools/pg<MAJOR>``: its server binaries
through ``DBKEEPER_PG_BINDIR``, and, through ``DBKEEPER_PG_CLIENT_BINDIR``, the client
tools of the newest build, since pg_dump must be at least as new as the server (as in
dbkeeper's image). A build that is not installed skips every test, or fails it under
``DBKEEPER_REQUIRE_TOOLS=1`` (``tests.tool_binaries``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tools.fetch_postgres import BUILDS

from dbkeeper.backup.pg_tools import CLIENT_BINDIR_ENV
from dbkeeper.local.postgres import available_preload_libraries, find_pg_bindir

SERVER_BINDIR_ENV = "DBKEEPER_PG_BINDIR"
OPTION = "--postgres"


@dataclass(frozen=True)
class SelectedBuild:
    """A build asked for on the command line, and whether it is installed."""

    major: int
    package: str
    server_bindir: Path
    client_bindir: Path

    @property
    def installed(self) -> bool:
        return (self.server_bindir / "initdb").is_file() and (
            self.client_bindir / "pg_dump"
        ).is_file()

    @property
    def description(self) -> str:
        return f"PostgreSQL {self.major} ({self.package})"


def known_majors() -> list[int]:
    return sorted(BUILDS)


def select(major: int) -> SelectedBuild:
    """The build of ``major``; its client tools are those of the newest build that has
    them, so that they are never older than the server."""
    build = BUILDS[major]
    client = max(
        (b for b in BUILDS.values() if b.installer == "pip" and b.major >= major),
        key=lambda b: b.major,
    )
    return SelectedBuild(major, build.package, build.bindir, client.bindir)


def use(selected: SelectedBuild) -> None:
    """Point dbkeeper's lookups (and every child process) at the selected build."""
    os.environ[SERVER_BINDIR_ENV] = str(selected.server_bindir)
    os.environ[CLIENT_BINDIR_ENV] = str(selected.client_bindir)


def server_has_pgaudit() -> bool:
    """Whether the server the tests use can preload pgaudit."""
    return "pgaudit" in available_preload_libraries(find_pg_bindir())
