"""The sequential-scan check on plans captured from PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from benchmarks.plans import execution_ms, large_seq_scans, plan_nodes, root_plan

from dbkeeper.conninfo import ConnInfo


@pytest.fixture
def big_and_small(database: ConnInfo) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database.dsn(), autocommit=True) as conn:
        conn.execute("CREATE TABLE big (id bigint PRIMARY KEY, note text)")
        conn.execute("INSERT INTO big SELECT g, 'x' FROM generate_series(1, 20000) g")
        conn.execute("CREATE TABLE small (id bigint PRIMARY KEY, big_id bigint)")
        conn.execute("INSERT INTO small SELECT g, g FROM generate_series(1, 50) g")
        conn.execute("ANALYZE big, small")
        yield conn


def explain(conn: psycopg.Connection[Any], query: str) -> Any:
    row = conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + query).fetchone()
    assert row is not None
    return row[0]


SIZES = {"public.big": 20000, "public.small": 50}


def test_a_filter_on_an_unindexed_column_of_a_large_table_is_reported(
    big_and_small: psycopg.Connection[Any],
) -> None:
    plan = explain(big_and_small, "SELECT * FROM big WHERE note = 'y'")
    findings = large_seq_scans(plan, SIZES)
    assert [(f.table, f.table_rows) for f in findings] == [("big", 20000)]
    assert findings[0].describe() == "Seq Scan on big (20000 rows in the table)"


def test_an_index_lookup_is_not_reported(big_and_small: psycopg.Connection[Any]) -> None:
    plan = explain(big_and_small, "SELECT * FROM big WHERE id = 42")
    assert large_seq_scans(plan, SIZES) == []


def test_a_seq_scan_of_a_small_table_is_not_reported(
    big_and_small: psycopg.Connection[Any],
) -> None:
    plan = explain(
        big_and_small, "SELECT * FROM small s JOIN big b ON b.id = s.big_id WHERE s.id < 40"
    )
    scanned = {n.get("Relation Name") for n in plan_nodes(root_plan(plan))}
    assert "small" in scanned
    assert large_seq_scans(plan, SIZES) == []


def test_a_table_of_unknown_size_counts_as_large(big_and_small: psycopg.Connection[Any]) -> None:
    plan = explain(big_and_small, "SELECT * FROM small WHERE big_id = 3")
    assert [f.table for f in large_seq_scans(plan, {})] == ["small"]


def test_a_bare_name_found_in_two_schemas_counts_as_large(
    big_and_small: psycopg.Connection[Any],
) -> None:
    plan = explain(big_and_small, "SELECT * FROM small WHERE big_id = 3")
    sizes = {"public.small": 50, "archive.small": 50}
    assert [f.table for f in large_seq_scans(plan, sizes)] == ["small"]


def test_execution_time_is_read_from_the_plan(big_and_small: psycopg.Connection[Any]) -> None:
    plan = explain(big_and_small, "SELECT count(*) FROM small")
    measured = execution_ms(plan)
    assert measured is not None
    assert measured >= 0


def test_something_other_than_explain_output_is_refused() -> None:
    with pytest.raises(ValueError, match="no 'Plan' key"):
        root_plan([{"rows": 3}])
