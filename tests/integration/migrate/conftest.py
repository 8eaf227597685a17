"""Fixtures for the migration engine tests: the fixture sets and a way to look inside."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dbkeeper.conninfo import ConnInfo
from dbkeeper.migrate import MigrationSet, load_set

SETS_ROOT = Path(__file__).resolve().parents[2] / "fixtures" / "migration_sets"


@pytest.fixture
def sets_root() -> Path:
    return SETS_ROOT


@pytest.fixture
def toy() -> MigrationSet:
    return load_set("toy", SETS_ROOT)


@pytest.fixture
def copied_sets(tmp_path: Path) -> Path:
    """A private copy of the fixture sets that a test may edit."""
    target = tmp_path / "sets"
    shutil.copytree(SETS_ROOT, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


class Peek:
    """Read-only queries against the database under test, from a session of its own."""

    def __init__(self, conninfo: ConnInfo) -> None:
        self.conninfo = conninfo

    def rows(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.conninfo.dsn(), autocommit=True) as connection:
            return connection.execute(query, params).fetchall()

    def value(self, query: str, params: tuple[Any, ...] = ()) -> Any:
        rows = self.rows(query, params)
        return rows[0][0] if rows else None

    def revision(self) -> str | None:
        if self.value("SELECT to_regclass('alembic_version')") is None:
            return None
        value: str | None = self.value("SELECT version_num FROM alembic_version")
        return value

    def tables(self) -> set[str]:
        return {
            str(row[0])
            for row in self.rows(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'"
            )
        }

    def columns(self, table: str) -> set[str]:
        return {
            str(row[0])
            for row in self.rows(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = 'public' AND table_name = %s",
                (table,),
            )
        }

    def history(self, outcome: str | None = None) -> list[tuple[Any, ...]]:
        """(revision, direction, outcome, from, to, error) oldest first."""
        if self.value("SELECT to_regclass('dbkeeper.migration_history')") is None:
            return []
        where = "WHERE outcome = %s" if outcome else ""
        params: tuple[Any, ...] = (outcome,) if outcome else ()
        return self.rows(
            "SELECT revision, direction, outcome, from_revision, to_revision, error "
            f"FROM dbkeeper.migration_history {where} ORDER BY id",
            params,
        )


@pytest.fixture
def peek(database: ConnInfo) -> Peek:
    return Peek(database)
