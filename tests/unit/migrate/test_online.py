"""Online revisions without a database: the flag, the names of the indexes a revision
builds concurrently (what a failed attempt may leave behind), and the lint's framing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dbkeeper.migrate import MigrationError, MigrationOptions, lint_sql, load_set, plan_move
from dbkeeper.migrate.lint import ONLINE_IGNORED_RULES
from dbkeeper.migrate.online import (
    ConcurrentBuild,
    clip_name,
    concurrent_builds,
    is_reindex_leftover,
)

SETS_ROOT = Path(__file__).resolve().parents[2] / "fixtures" / "migration_sets"


def test_a_revision_that_declares_no_transaction_is_online() -> None:
    revisions = load_set("online_index", SETS_ROOT).revisions

    assert [(revision.id, revision.online) for revision in revisions] == [
        ("0001", False),
        ("0002", True),
    ]


def test_a_flag_that_is_not_a_boolean_makes_the_set_invalid(tmp_path: Path) -> None:
    shutil.copytree(SETS_ROOT / "online_index", tmp_path / "online_index")
    revision = tmp_path / "online_index" / "versions" / "0002_readings_sensor_index.py"
    revision.write_text(
        revision.read_text().replace("dbkeeper_transaction = False", 'dbkeeper_transaction = "no"')
    )

    with pytest.raises(MigrationError) as caught:
        load_set("online_index", tmp_path)

    assert caught.value.reason == "InvalidMigrationSet"
    assert "dbkeeper_transaction" in caught.value.message
    assert "True or False" in caught.value.message


def test_create_index_concurrently_names_the_index_and_its_table() -> None:
    assert concurrent_builds("CREATE INDEX CONCURRENTLY events_kind_idx ON events (kind);") == [
        ConcurrentBuild("create", "events_kind_idx", schema=None, table="events")
    ]


def test_unique_and_if_not_exists_are_understood() -> None:
    (build,) = concurrent_builds(
        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS users_email_key ON users (email)"
    )

    assert (build.index, build.table) == ("users_email_key", "users")


def test_the_index_is_in_the_schema_of_its_table() -> None:
    (build,) = concurrent_builds(
        "CREATE INDEX CONCURRENTLY log_at_idx ON ONLY audit.log USING btree (at)"
    )

    assert (build.schema, build.table, build.index) == ("audit", "log", "log_at_idx")
    assert build.relation == '"audit"."log"'


def test_unquoted_names_fold_to_lower_case_and_quoted_ones_are_kept() -> None:
    (build,) = concurrent_builds(
        'create index concurrently "Odd ""Name""" on Public.Readings (Sensor)'
    )

    assert (build.schema, build.table, build.index) == ("public", "readings", 'Odd "Name"')
    assert build.relation == '"public"."readings"'


def test_names_longer_than_postgresql_keeps_are_cut_as_it_cuts_them() -> None:
    long_name = "x" * 70
    (build,) = concurrent_builds(f"CREATE INDEX CONCURRENTLY {long_name} ON t (c)")

    assert build.index == "x" * 63
    assert clip_name("é" * 40) == "é" * 31  # 62 bytes: a character is never split


def test_reindex_index_concurrently_names_the_index() -> None:
    builds = concurrent_builds(
        "REINDEX INDEX CONCURRENTLY audit.log_at_idx; "
        "REINDEX (VERBOSE) INDEX CONCURRENTLY plain_idx; "
        "REINDEX (CONCURRENTLY, VERBOSE) INDEX option_idx;"
    )

    assert builds == [
        ConcurrentBuild("reindex", "log_at_idx", schema="audit"),
        ConcurrentBuild("reindex", "plain_idx", schema=None),
        ConcurrentBuild("reindex", "option_idx", schema=None),
    ]
    assert builds[0].relation == '"audit"."log_at_idx"'


def test_statements_that_build_nothing_concurrently_are_left_out() -> None:
    sql = """
        CREATE INDEX plain_idx ON t (c);
        CREATE INDEX CONCURRENTLY ON t (c);  -- unnamed: PostgreSQL picks the name
        REINDEX INDEX plain_idx;
        REINDEX (CONCURRENTLY false) INDEX not_concurrent_idx;
        DROP INDEX CONCURRENTLY IF EXISTS gone_idx;
        UPDATE alembic_version SET version_num='0002';
    """

    assert concurrent_builds(sql) == []


def test_comments_and_literals_are_not_read_as_statements() -> None:
    sql = """
        -- CREATE INDEX CONCURRENTLY in_a_comment ON t (c);
        /* CREATE INDEX CONCURRENTLY in_a_block ON t (c); */
        INSERT INTO notes VALUES ('CREATE INDEX CONCURRENTLY in_a_string ON t (c);');
        DO $body$ BEGIN EXECUTE 'x'; END $body$;
        CREATE INDEX CONCURRENTLY real_idx ON t (c);
    """

    assert [build.index for build in concurrent_builds(sql)] == ["real_idx"]


def test_the_sql_alembic_renders_for_the_fixture_revision() -> None:
    sql = (
        "-- Running upgrade 0001 -> 0002\n\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS readings_sensor_idx ON readings (sensor);\n"
    )

    assert concurrent_builds(sql) == [
        ConcurrentBuild("create", "readings_sensor_idx", schema=None, table="readings")
    ]


@pytest.mark.parametrize(
    "candidate",
    ["orders_idx_ccnew", "orders_idx_ccnew1", "orders_idx_ccnew12", "orders_idx_ccold"],
)
def test_what_reindex_concurrently_names_its_transient_indexes(candidate: str) -> None:
    assert is_reindex_leftover(candidate, "orders_idx")


@pytest.mark.parametrize(
    "candidate",
    ["orders_idx", "orders_idx_ccnewer", "orders_idx2_ccnew", "other_ccnew", "orders_ccnew"],
)
def test_other_names_are_not_reindex_leftovers(candidate: str) -> None:
    assert not is_reindex_leftover(candidate, "orders_idx")


def test_a_long_index_leaves_a_shortened_name_behind() -> None:
    index = "i" * 63

    assert is_reindex_leftover("i" * 57 + "_ccnew", index)
    assert is_reindex_leftover("i" * 56 + "_ccnew1", index)
    assert not is_reindex_leftover("i" * 63 + "_ccnew", index)


def test_an_online_revision_is_told_to_make_its_statements_rerunnable() -> None:
    findings = lint_sql(
        "CREATE INDEX CONCURRENTLY readings_idx ON readings (x);", ONLINE_IGNORED_RULES
    )

    assert [finding.rule for finding in findings] == ["prefer-robust-stmts"]
    assert (
        lint_sql(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS readings_idx ON readings (x);",
            ONLINE_IGNORED_RULES,
        )
        == []
    )


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE INDEX events_kind_idx ON events (kind);",
        "DROP INDEX events_kind_idx;",
        "ALTER TABLE t ADD CONSTRAINT t_k_key UNIQUE (k);",
        "BEGIN; CREATE INDEX CONCURRENTLY a ON t (k); COMMIT;",
    ],
)
def test_advice_to_use_concurrently_points_to_online_revisions(sql: str) -> None:
    advised = [finding for finding in lint_sql(sql) if "CONCURRENTLY" in (finding.help or "")]

    assert advised
    assert all("dbkeeper_transaction = False" in (f.help or "") for f in advised)


def test_an_online_first_revision_is_not_blamed_for_alembic_version(tmp_path: Path) -> None:
    shutil.copytree(SETS_ROOT / "online_index", tmp_path / "first_online")
    versions = tmp_path / "first_online" / "versions"
    (versions / "0001_readings.py").unlink()
    revision = versions / "0002_readings_sensor_index.py"
    revision.write_text(
        revision.read_text().replace('down_revision: str | None = "0001"', "down_revision = None")
    )

    (step,) = plan_move(None, load_set("first_online", tmp_path), MigrationOptions()).steps

    assert "CREATE TABLE alembic_version" in step.sql
    assert step.findings == ()
