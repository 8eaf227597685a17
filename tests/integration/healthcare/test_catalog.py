"""What the system catalog must show about the migrated schema: indexes behind every
foreign key, and the audit triggers on every table holding patient data."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from dbkeeper.healthcare.models import PATIENT_DATA_TABLES

Conn = psycopg.Connection[tuple[Any, ...]]

_FOREIGN_KEYS = """
SELECT c.conrelid::regclass::text, c.conname, c.conkey::int[]
  FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
 WHERE c.contype = 'f' AND n.nspname IN ('public', 'audit')
"""
_INDEX_KEYS = "SELECT indkey::int[] FROM pg_index WHERE indrelid = %s::regclass"


def test_every_foreign_key_column_leads_an_index(rollback_conn: Conn) -> None:
    foreign_keys = rollback_conn.execute(_FOREIGN_KEYS).fetchall()
    assert len(foreign_keys) >= 15
    uncovered = []
    for table, name, columns in foreign_keys:
        indexes = [row[0] for row in rollback_conn.execute(_INDEX_KEYS, (table,))]
        if not any(index[: len(columns)] == columns for index in indexes):
            uncovered.append(name)
    assert uncovered == []


_AUDIT_TRIGGERS = """
SELECT t.tgname, p.oid::regproc::text, t.tgtype, t.tgoldtable, t.tgnewtable, t.tgenabled
  FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
 WHERE t.tgrelid = %s::regclass AND NOT t.tgisinternal
"""
# pg_trigger.tgtype bits: 1 row-level, 2 before, 4 insert, 8 delete, 16 update, 32 truncate.
_EXPECTED = {
    "audit_insert": ("audit.record_changes", 4, None, "new_rows"),
    "audit_update": ("audit.record_changes", 16, "old_rows", "new_rows"),
    "audit_delete": ("audit.record_changes", 8, "old_rows", None),
    "audit_no_truncate": ("audit.refuse_change", 2 | 32, None, None),
}


@pytest.mark.parametrize("table", PATIENT_DATA_TABLES)
def test_patient_data_table_has_the_audit_triggers(table: str, rollback_conn: Conn) -> None:
    found = {
        name: (function, tgtype, old, new)
        for name, function, tgtype, old, new, enabled in rollback_conn.execute(
            _AUDIT_TRIGGERS, (f"public.{table}",)
        )
        if enabled == "O"
    }
    assert found == _EXPECTED


def test_patient_data_tables_are_patients_and_every_table_referring_to_them(
    rollback_conn: Conn,
) -> None:
    referring = {
        row[0]
        for row in rollback_conn.execute(
            "SELECT conrelid::regclass::text FROM pg_constraint "
            "WHERE contype = 'f' AND confrelid = 'public.patients'::regclass"
        )
    }
    assert set(PATIENT_DATA_TABLES) == {"patients"} | referring


def test_audit_writer_runs_with_its_owner_rights_and_a_fixed_search_path(
    rollback_conn: Conn,
) -> None:
    row = rollback_conn.execute(
        "SELECT prosecdef, proconfig FROM pg_proc WHERE oid = 'audit.record_changes'::regproc"
    ).fetchone()
    assert row == (True, ["search_path=pg_catalog, pg_temp"])


@pytest.mark.parametrize(
    ("lookup", "leading_columns"),
    [
        ("patients by organization and MRN", ["organization_id", "mrn"]),
        ("a patient's encounters in a time range", ["patient_id", "started_at"]),
        ("a practitioner's encounters on a day", ["practitioner_id", "started_at"]),
        ("a patient's observations in a time range", ["patient_id", "effective_at"]),
        ("a practitioner's appointments on a day", ["practitioner_id", "starts_at"]),
        ("a patient's appointments in a time range", ["patient_id", "starts_at"]),
    ],
)
def test_application_lookups_have_an_index(
    lookup: str, leading_columns: list[str], rollback_conn: Conn
) -> None:
    rows = rollback_conn.execute(
        "SELECT array_agg(a.attname ORDER BY k.ord) FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
        "WHERE n.nspname = 'public' GROUP BY i.indexrelid"
    ).fetchall()
    assert any(row[0][: len(leading_columns)] == leading_columns for row in rows), lookup
