"""squawk on migration SQL: what is flagged, what is risky, what the engine makes moot."""

from __future__ import annotations

from pathlib import Path

from dbkeeper.migrate import MigrationOptions, lint_sql, load_set, plan_move

SETS_ROOT = Path(__file__).resolve().parents[2] / "fixtures" / "migration_sets"


def test_create_index_without_concurrently_is_flagged_as_risky() -> None:
    findings = lint_sql("CREATE INDEX events_kind_idx ON events (kind);")

    assert [finding.rule for finding in findings] == ["require-concurrent-index-creation"]
    assert findings[0].risky
    assert findings[0].message


def test_create_index_concurrently_is_clean() -> None:
    assert lint_sql("CREATE INDEX CONCURRENTLY events_kind_idx ON events (kind);") == []


def test_rules_the_engine_makes_moot_are_not_reported() -> None:
    # Not robust (no IF NOT EXISTS), no timeouts set, int and varchar: all moot here.
    findings = lint_sql("CREATE TABLE t (id int PRIMARY KEY, name varchar(20));")

    assert findings == []


def test_adding_a_foreign_key_is_flagged() -> None:
    findings = lint_sql(
        "ALTER TABLE orders ADD CONSTRAINT orders_item_fk FOREIGN KEY (item_id) "
        "REFERENCES items (id);"
    )

    assert "adding-foreign-key-constraint" in {finding.rule for finding in findings}
    assert all(finding.line == 1 for finding in findings)


def test_empty_sql_has_no_findings() -> None:
    assert lint_sql("  \n") == []


def test_offline_plan_renders_each_step_without_a_database() -> None:
    toy = load_set("toy", SETS_ROOT)

    plan = plan_move(None, toy, MigrationOptions(target="0002", lint_mode="off"))

    assert [(s.revision, s.from_revision, s.to_revision) for s in plan.steps] == [
        ("0001", None, "0001"),
        ("0002", "0001", "0002"),
    ]
    assert "CREATE TABLE items" in plan.steps[0].sql
    assert "ALTER TABLE items ADD COLUMN price_cents" in plan.steps[1].sql
    assert "CREATE TABLE items" not in plan.steps[1].sql
