"""The healthcare migration chain: pytest-alembic's built-in checks and a stairway walk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from pytest_alembic.tests import (
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from dbkeeper.healthcare.models import metadata
from tests.integration.healthcare.conftest import SCRIPT_LOCATION

__all__ = [
    "test_model_definitions_match_ddl",
    "test_single_head_revision",
    "test_up_down_consistency",
    "test_upgrade",
]


def _schema_objects(engine: Engine) -> dict[str, Any]:
    """What a revision may add: tables with their columns, indexes, constraints and
    triggers, functions, schemas, in the set's schemas."""
    inspector = inspect(engine)
    objects: dict[str, Any] = {}
    for schema in ("public", "audit"):
        if schema not in inspector.get_schema_names():
            continue
        for table in inspector.get_table_names(schema=schema):
            if table == "alembic_version":
                continue
            objects[f"{schema}.{table}"] = (
                sorted(c["name"] for c in inspector.get_columns(table, schema=schema)),
                sorted(str(i["name"]) for i in inspector.get_indexes(table, schema=schema)),
                sorted(
                    str(c["name"]) for c in inspector.get_check_constraints(table, schema=schema)
                ),
            )
    with engine.connect() as conn:
        objects["triggers"] = sorted(
            conn.execute(
                text(
                    "SELECT tgrelid::regclass::text || '.' || tgname FROM pg_trigger "
                    "WHERE NOT tgisinternal"
                )
            ).scalars()
        )
        objects["functions"] = sorted(
            conn.execute(
                text(
                    "SELECT p.oid::regprocedure::text FROM pg_proc p "
                    "JOIN pg_namespace n ON n.oid = p.pronamespace "
                    "WHERE n.nspname IN ('public', 'audit')"
                )
            ).scalars()
        )
        objects["schemas"] = sorted(
            conn.execute(text("SELECT nspname FROM pg_namespace WHERE nspname = 'audit'")).scalars()
        )
    return objects


def test_stairway_up_down_up_leaves_each_revision_as_it_was(
    alembic_runner: Any, alembic_engine: Engine
) -> None:
    revisions = [r for r in alembic_runner.history.revisions if r not in ("base", "heads")]
    assert len(revisions) >= 5
    for revision in revisions:
        before = _schema_objects(alembic_engine)
        alembic_runner.migrate_up_to(revision)
        after = _schema_objects(alembic_engine)
        assert after != before, f"revision {revision} changed nothing"
        alembic_runner.migrate_down_one()
        assert _schema_objects(alembic_engine) == before, f"downgrade of {revision} left objects"
        alembic_runner.migrate_up_one()
        assert _schema_objects(alembic_engine) == after, f"re-upgrade of {revision} differs"


def test_head_has_every_modelled_table(alembic_runner: Any, alembic_engine: Engine) -> None:
    alembic_runner.migrate_up_to("heads")
    inspector = inspect(alembic_engine)
    present = {f"public.{t}" for t in inspector.get_table_names(schema="public")}
    present |= {f"audit.{t}" for t in inspector.get_table_names(schema="audit")}
    modelled = {f"{t.schema or 'public'}.{t.name}" for t in metadata.sorted_tables}
    assert modelled <= present


@pytest.mark.parametrize("target", ["0001", "0002", "0003", "0004", "0005", "0006"])
def test_each_revision_renders_offline_sql_both_ways(target: str, tmp_path: Path) -> None:
    # ``dbkeeper plan`` renders each step like this (no database) and lints the SQL.
    rendered = tmp_path / "plan.sql"
    with rendered.open("w") as out:
        config = AlembicConfig(output_buffer=out)
        config.set_main_option("script_location", SCRIPT_LOCATION)
        config.set_main_option("sqlalchemy.url", "postgresql+psycopg://")
        previous = f"{int(target) - 1:04d}"
        command.upgrade(config, f"{previous}:{target}" if target != "0001" else target, sql=True)
        command.downgrade(config, f"{target}:{previous if target != '0001' else 'base'}", sql=True)
    text_ = rendered.read_text()
    assert f"UPDATE alembic_version SET version_num='{target}'" in text_ or target == "0001"
    assert "CREATE TABLE" in text_
    assert "DROP TABLE" in text_
