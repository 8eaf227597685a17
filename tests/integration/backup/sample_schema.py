"""A small schema with a hash-chained audit table, standing in for an application.

``audit.verify_chain()`` has the contract dbkeeper's drills rely on: it returns
``(broken_id bigint, reason text)`` rows, none when the chain is intact.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from dbkeeper.conninfo import ConnInfo

REVISION = "0003_visits"

SCHEMA_SQL = """
CREATE SCHEMA clinic;
CREATE TABLE clinic.patients (
    id serial PRIMARY KEY, name text NOT NULL, born date NOT NULL);
CREATE TABLE clinic.visits (
    id serial PRIMARY KEY,
    patient_id int NOT NULL REFERENCES clinic.patients(id),
    at timestamptz NOT NULL, note text);
CREATE TABLE public.alembic_version (version_num varchar(32) PRIMARY KEY);

CREATE SCHEMA audit;
CREATE TABLE audit.log (
    id bigserial PRIMARY KEY, action text NOT NULL, detail text NOT NULL,
    prev_hash text NOT NULL, hash text NOT NULL);

CREATE FUNCTION audit.entry_hash(prev text, action text, detail text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT encode(sha256(convert_to(prev || '|' || action || '|' || detail, 'UTF8')), 'hex')
$$;

CREATE FUNCTION audit.append(p_action text, p_detail text) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO audit.log (action, detail, prev_hash, hash)
  SELECT p_action, p_detail, prev, audit.entry_hash(prev, p_action, p_detail)
  FROM (SELECT coalesce((SELECT hash FROM audit.log ORDER BY id DESC LIMIT 1), '') AS prev) s
$$;

CREATE FUNCTION audit.verify_chain() RETURNS TABLE (broken_id bigint, reason text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  entry record;
  expected_prev text := '';
BEGIN
  FOR entry IN SELECT * FROM audit.log ORDER BY id LOOP
    IF entry.prev_hash <> expected_prev THEN
      broken_id := entry.id; reason := 'prev_hash does not match the previous entry';
      RETURN NEXT;
    ELSIF entry.hash <> audit.entry_hash(entry.prev_hash, entry.action, entry.detail) THEN
      broken_id := entry.id; reason := 'hash does not match the entry';
      RETURN NEXT;
    END IF;
    expected_prev := entry.hash;
  END LOOP;
END
$$;
"""


def create_sample_schema(info: ConnInfo, patients: int = 200) -> None:
    """Schema, rows in every table, audit entries, and an Alembic revision."""
    with psycopg.connect(info.dsn(), autocommit=True) as conn:
        conn.execute(SCHEMA_SQL)
        conn.execute("INSERT INTO public.alembic_version VALUES (%s)", (REVISION,))
        conn.execute(
            "INSERT INTO clinic.patients (name, born) "
            "SELECT 'patient ' || g, date '1950-01-01' + g FROM generate_series(1, %s) g",
            (patients,),
        )
        conn.execute(
            "INSERT INTO clinic.visits (patient_id, at, note) "
            "SELECT 1 + g %% %s, timestamptz '2026-01-01' + g * interval '1 hour', "
            "'note ' || g FROM generate_series(1, %s) g",
            (patients, patients * 3),
        )
        for number in range(1, 21):
            conn.execute("SELECT audit.append(%s, %s)", ("read", f"patient {number}"))


def table_checksums(info: ConnInfo) -> dict[str, str]:
    """md5 over every row of every user table, in a stable order."""
    checksums: dict[str, str] = {}
    with psycopg.connect(info.dsn(), autocommit=True) as conn:
        tables = conn.execute(
            "SELECT schemaname, tablename FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
        ).fetchall()
        for schema, table in tables:
            row = conn.execute(
                sql.SQL(
                    "SELECT md5(coalesce(string_agg(t::text, '' ORDER BY t::text), '')) "
                    "FROM {}.{} t"
                ).format(sql.Identifier(schema), sql.Identifier(table))
            ).fetchone()
            assert row is not None
            checksums[f"{schema}.{table}"] = str(row[0])
    return checksums


def audit_chain_breaks(info: ConnInfo) -> list[tuple[int, str]]:
    with psycopg.connect(info.dsn(), autocommit=True) as conn:
        return [(int(r[0]), str(r[1])) for r in conn.execute("SELECT * FROM audit.verify_chain()")]


def database_exists(admin: ConnInfo, name: str) -> bool:
    with psycopg.connect(admin.dsn(), autocommit=True) as conn:
        return (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            is not None
        )


def databases_like(admin: ConnInfo, pattern: str) -> list[str]:
    with psycopg.connect(admin.dsn(), autocommit=True) as conn:
        return [
            str(r[0])
            for r in conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s ORDER BY 1", (pattern,)
            )
        ]
