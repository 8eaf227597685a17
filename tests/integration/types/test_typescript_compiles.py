"""The module generated from the migrated healthcare database, compiled with ``tsc
--strict`` against the pinned drizzle-orm: typed inserts and joins over its foreign keys
compile, mistakes do not, and what Drizzle reads from it is what the catalog says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dbkeeper.conninfo import ConnInfo
from dbkeeper.types.generate import generate
from tests.integration.types.conftest import CopyDatabase
from tests.integration.types.toolchain import Toolchain

INSPECT_SCRIPT = Path(__file__).with_name("inspect_module.cjs")
SCHEMAS = ("audit", "public")

QUERIES = """\
import { and, eq } from "drizzle-orm";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import {
  encounters,
  observations,
  organizations,
  patients,
  practitioners,
  type PatientsInsert,
  type PatientsRow,
} from "./schema";

declare const db: PgDatabase<PgQueryResultHKT>;

type Visit = {
  mrn: string;
  startedAt: Date;
  practitioner: string;
  clinic: string;
  value: string | null;
};

export async function visits(patientId: bigint): Promise<Visit[]> {
  return db
    .select({
      mrn: patients.mrn,
      startedAt: encounters.startedAt,
      practitioner: practitioners.familyName,
      clinic: organizations.name,
      value: observations.valueNumeric,
    })
    .from(patients)
    .innerJoin(encounters, eq(encounters.patientId, patients.id))
    .innerJoin(practitioners, eq(practitioners.id, encounters.practitionerId))
    .innerJoin(organizations, eq(organizations.id, encounters.organizationId))
    .leftJoin(observations, eq(observations.encounterId, encounters.id))
    .where(and(eq(patients.id, patientId), eq(encounters.status, "finished")));
}

export async function admit(): Promise<PatientsRow[]> {
  const patient: PatientsInsert = {
    organizationId: 1n,
    mrn: "MRN-0001",
    givenName: "Ada",
    familyName: "Lovelace",
    birthDate: "1990-12-10",
    sex: "female",
  };
  return db.insert(patients).values(patient).returning();
}
"""


def _insert(fields: str) -> str:
    return f"""\
import type {{ PgDatabase, PgQueryResultHKT }} from "drizzle-orm/pg-core";
import {{ patients }} from "./schema";

declare const db: PgDatabase<PgQueryResultHKT>;

export const admitted = db.insert(patients).values({{
  organizationId: 1n,
  mrn: "MRN-0001",
  givenName: "Ada",
  familyName: "Lovelace",
  birthDate: "1990-12-10",
  {fields}
}});
"""


@pytest.fixture(scope="module")
def schema_module(healthcare_template: ConnInfo) -> str:
    return generate(healthcare_template).text


def _compile(toolchain: Toolchain, folder: Path, module: str, **files: str) -> str:
    """tsc's complaints about ``files`` beside ``schema.ts``; ``""`` when it compiles."""
    project = toolchain.project(folder, {"schema.ts": module, **files})
    done = toolchain.compile(project)
    assert done.returncode in (0, 1, 2), done.stderr
    return done.stdout if done.returncode else ""


def test_the_module_and_queries_joining_over_its_foreign_keys_compile(
    toolchain: Toolchain, tmp_path: Path, schema_module: str
) -> None:
    assert _compile(toolchain, tmp_path, schema_module, **{"queries.ts": QUERIES}) == ""


def test_an_insert_naming_a_column_the_table_lacks_does_not_compile(
    toolchain: Toolchain, tmp_path: Path, schema_module: str
) -> None:
    errors = _compile(
        toolchain, tmp_path, schema_module, **{"insert.ts": _insert('sex: "female", shoeSize: 42,')}
    )

    assert "insert.ts(" in errors
    assert "'shoeSize' does not exist" in errors


def test_an_insert_of_a_value_outside_a_checked_list_does_not_compile(
    toolchain: Toolchain, tmp_path: Path, schema_module: str
) -> None:
    errors = _compile(toolchain, tmp_path, schema_module, **{"insert.ts": _insert('sex: "femal",')})

    assert "insert.ts(" in errors
    assert '"femal"' in errors
    assert '"female" | "male" | "other" | "unknown"' in errors


def test_an_insert_of_a_string_into_a_bigint_column_does_not_compile(
    toolchain: Toolchain, tmp_path: Path, schema_module: str
) -> None:
    wrong = _insert('sex: "female",').replace("organizationId: 1n", 'organizationId: "1"')

    errors = _compile(toolchain, tmp_path, schema_module, **{"insert.ts": wrong})

    assert "insert.ts(" in errors
    assert "Type 'string' is not assignable to type 'bigint | SQL<unknown>" in errors
    assert "organizationId" in errors


def _drizzle_view(toolchain: Toolchain, folder: Path, module: str) -> list[dict[str, Any]]:
    """What drizzle-orm reads from the compiled module, table by table."""
    project = toolchain.project(folder, {"schema.ts": module}, emit=True)
    compiled = toolchain.compile(project)
    assert compiled.returncode == 0, compiled.stdout
    script = project / INSPECT_SCRIPT.name
    script.write_text(INSPECT_SCRIPT.read_text())
    done = toolchain.run(script)
    assert done.returncode == 0, done.stderr
    view: list[dict[str, Any]] = json.loads(done.stdout)
    return view


def _rows(database: ConnInfo, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database.dsn(), autocommit=True) as conn:
        return conn.execute(query, {"schemas": list(SCHEMAS)}).fetchall()


_COLUMNS = """
SELECT c.table_schema, c.table_name, c.column_name,
       format_type(a.atttypid, a.atttypmod) || repeat('[]', greatest(a.attndims - 1, 0)),
       c.is_nullable = 'NO',
       c.column_default IS NOT NULL OR c.is_identity = 'YES'
  FROM information_schema.columns c
  JOIN pg_attribute a ON a.attrelid = format('%%I.%%I', c.table_schema, c.table_name)::regclass
                     AND a.attname = c.column_name
 WHERE c.table_schema = ANY(%(schemas)s) AND c.table_name <> 'alembic_version'
"""
_FOREIGN_KEYS = """
SELECT n.nspname || '.' || r.relname, c.conname,
       ARRAY(SELECT attname::text FROM unnest(c.conkey) WITH ORDINALITY k(num, pos)
               JOIN pg_attribute ON attrelid = c.conrelid AND attnum = k.num ORDER BY k.pos),
       tn.nspname || '.' || t.relname,
       ARRAY(SELECT attname::text FROM unnest(c.confkey) WITH ORDINALITY k(num, pos)
               JOIN pg_attribute ON attrelid = c.confrelid AND attnum = k.num ORDER BY k.pos),
       CASE c.confdeltype WHEN 'a' THEN 'no action' WHEN 'r' THEN 'restrict'
            WHEN 'c' THEN 'cascade' WHEN 'n' THEN 'set null' ELSE 'set default' END
  FROM pg_constraint c
  JOIN pg_class r ON r.oid = c.conrelid JOIN pg_namespace n ON n.oid = r.relnamespace
  JOIN pg_class t ON t.oid = c.confrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace
 WHERE c.contype = 'f' AND n.nspname = ANY(%(schemas)s)
"""
_INDEXES = """
SELECT schemaname || '.' || tablename, indexname FROM pg_indexes
 WHERE schemaname = ANY(%(schemas)s) AND tablename <> 'alembic_version'
"""


# Drizzle writes some types by their short names; PostgreSQL reads both the same way.
_SYNONYMS = (
    ("charactervarying", "varchar"),
    ("character(", "char("),
    ("withouttimezone", ""),
)


def _sql_type(text: str) -> str:
    """A type's spelling with spaces and PostgreSQL's long synonyms taken out."""
    spelled = text.replace(" ", "")
    for long, short in _SYNONYMS:
        spelled = spelled.replace(long, short)
    return spelled


def test_drizzle_reads_every_column_of_the_catalog_with_its_type_nullability_and_default(
    toolchain: Toolchain, tmp_path: Path, schema_module: str, healthcare_template: ConnInfo
) -> None:
    view = _drizzle_view(toolchain, tmp_path, schema_module)

    declared = {
        (table["schema"], table["name"], column["name"]): (
            _sql_type(column["type"]),
            column["notNull"],
            column["hasDefault"],
        )
        for table in view
        for column in table["columns"]
    }
    in_catalog = {
        (schema, table, column): (_sql_type(sql_type), not_null, has_default)
        for schema, table, column, sql_type, not_null, has_default in _rows(
            healthcare_template, _COLUMNS
        )
    }
    assert len(in_catalog) > 100
    assert declared == in_catalog


def test_drizzle_reads_the_keys_and_indexes_of_the_catalog(
    toolchain: Toolchain, tmp_path: Path, schema_module: str, healthcare_template: ConnInfo
) -> None:
    view = _drizzle_view(toolchain, tmp_path, schema_module)

    foreign_keys = {
        (f"{table['schema']}.{table['name']}", key["name"], tuple(key["columns"]), key["target"],
         tuple(key["targetColumns"]), key["onDelete"])
        for table in view
        for key in table["foreignKeys"]
    }  # fmt: skip
    expected = {
        (table, name, tuple(columns), target, tuple(target_columns), on_delete)
        for table, name, columns, target, target_columns, on_delete in _rows(
            healthcare_template, _FOREIGN_KEYS
        )
    }
    assert len(expected) >= 15
    assert foreign_keys == expected
    # Every index of the catalog is declared: as an index, a unique constraint, or the
    # primary key (Drizzle names a one-column primary key itself: <table>_pkey).
    names = {
        (f"{table['schema']}.{table['name']}", entry["name"])
        for table in view
        for entry in [*table["indexes"], *table["uniques"]]
    }
    primary = {
        f"{table['schema']}.{table['name']}"
        for table in view
        if any(column["primary"] for column in table["columns"]) or table["primaryKeys"]
    }
    for table, index in _rows(healthcare_template, _INDEXES):
        assert (table, index) in names or (index.startswith("pk_") and table in primary)


_EVERY_TYPE = """
CREATE TYPE mood AS ENUM ('calm', 'tense', 'it''s fine');
CREATE SCHEMA lab;
CREATE TABLE lab.samples (
    site text NOT NULL,
    seq integer GENERATED BY DEFAULT AS IDENTITY,
    parent_site text,
    parent_seq integer,
    small smallint DEFAULT 7 NOT NULL,
    big bigint DEFAULT 0 NOT NULL,
    price numeric(10,2) DEFAULT 1.50,
    ratio real,
    score double precision DEFAULT -2.5,
    ok boolean DEFAULT false NOT NULL,
    code varchar(12) DEFAULT 'a''b' CHECK (code IN ('a''b', 'cd')),
    letter char(1),
    label varchar,
    ref uuid DEFAULT gen_random_uuid(),
    doc json,
    tags text[] DEFAULT '{}',
    grid integer[][],
    weights numeric(6,3)[],
    taken date DEFAULT CURRENT_DATE,
    at_local timestamp(3) without time zone,
    at_zone timestamp with time zone DEFAULT now() NOT NULL,
    clock time,
    clock_zone time(2) with time zone,
    span interval,
    span_days interval day,
    span_fine interval hour to second(3),
    host inet,
    net cidr,
    mac macaddr,
    mac8 macaddr8,
    spot point,
    edge line,
    feeling mood DEFAULT 'calm',
    feelings mood[],
    doubled integer GENERATED ALWAYS AS (small * 2) STORED,
    "Odd Name" text,
    PRIMARY KEY (site, seq),
    CONSTRAINT fk_samples_parent FOREIGN KEY (parent_site, parent_seq)
        REFERENCES lab.samples (site, seq) ON DELETE SET NULL ON UPDATE CASCADE,
    CONSTRAINT uq_samples_ref UNIQUE NULLS NOT DISTINCT (ref)
);
CREATE INDEX ix_samples_at_desc ON lab.samples (at_zone DESC, site NULLS FIRST);
CREATE INDEX ix_samples_lower_label ON lab.samples (lower(label)) WHERE label IS NOT NULL;
CREATE UNIQUE INDEX ux_samples_code ON lab.samples USING btree (code DESC NULLS LAST);
CREATE INDEX ix_samples_tags ON lab.samples USING gin (tags);
"""

_SAMPLES = """
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { labSamples, type LabSamplesRow } from "./schema";

declare const db: PgDatabase<PgQueryResultHKT>;

export async function add(): Promise<LabSamplesRow[]> {
  return db
    .insert(labSamples)
    .values({ site: "north", code: "cd", feeling: "it's fine", tags: ["x"], grid: [[1, 2]] })
    .returning();
}

export function read(row: LabSamplesRow): [string | null, bigint, number | null, boolean] {
  const seq: number = row.seq;
  const weights: string[] | null = row.weights;
  const odd: string | null = row.oddName;
  void seq, weights, odd;
  return [row.code, row.big, row.doubled, row.ok];
}
"""


def test_every_mapped_type_compiles_and_drizzle_reads_it_as_the_catalog_has_it(
    toolchain: Toolchain, tmp_path: Path, copy_healthcare: CopyDatabase
) -> None:
    database = copy_healthcare()
    with psycopg.connect(database.dsn(), autocommit=True) as conn:
        conn.execute(_EVERY_TYPE)
    module = generate(database, ["lab", "public"]).text

    errors = _compile(toolchain, tmp_path / "check", module, **{"samples.ts": _SAMPLES})
    view = _drizzle_view(toolchain, tmp_path / "emit", module)

    assert errors == ""
    (samples,) = (table for table in view if table["name"] == "samples")
    declared = {
        column["name"]: (_sql_type(column["type"]), column["notNull"], column["hasDefault"])
        for column in samples["columns"]
    }
    with psycopg.connect(database.dsn(), autocommit=True) as conn:
        rows = conn.execute(_COLUMNS, {"schemas": ["lab"]}).fetchall()
    expected = {row[2]: (_sql_type(row[3]), row[4], row[5]) for row in rows}
    # Drizzle writes a generated column's type alone and counts it as having no default.
    expected["doubled"] = ("integer", False, False)
    assert declared == expected
    assert samples["primaryKeys"] == [{"name": "samples_pkey", "columns": ["site", "seq"]}]
    assert samples["foreignKeys"] == [
        {
            "name": "fk_samples_parent",
            "columns": ["parent_site", "parent_seq"],
            "target": "lab.samples",
            "targetColumns": ["site", "seq"],
            "onDelete": "set null",
            "onUpdate": "cascade",
        }
    ]
    assert samples["uniques"] == [{"name": "uq_samples_ref", "columns": ["ref"]}]
    assert samples["indexes"] == [
        {"name": "ix_samples_at_desc", "unique": False, "method": "btree",
         "columns": ["at_zone", "site"]},
        {"name": "ix_samples_lower_label", "unique": False, "method": "btree", "columns": [None]},
        {"name": "ix_samples_tags", "unique": False, "method": "gin", "columns": ["tags"]},
        {"name": "ux_samples_code", "unique": True, "method": "btree", "columns": ["code"]},
    ]  # fmt: skip
    assert '.$type<"a\'b" | "cd">()' in module
    assert 'code: varchar("code", { length: 12 }).$type<"a\'b" | "cd">().default("a\'b"),' in module
