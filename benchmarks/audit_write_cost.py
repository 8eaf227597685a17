"""Where the server time of an audited write goes (audit trail v2).

The write of the latency benchmark (a new encounter and three observations, two
statements) run inside the server, many times in one ``DO`` block, so neither the
client, the network nor a commit is measured: only what the statements and their
triggers cost. Each variant runs in a transaction that is rolled back, so the swapped
trigger functions and the rows written never stay:

- audit off: the two tables' audit triggers disabled;
- as shipped: ``audit.record_changes()`` of the healthcare set's head revision;
- empty trigger: the same statement-level triggers calling a function that does
  nothing (what firing them costs);
- no content hash: the shipped function with a constant in place of the row's SHA-256
  (what hashing its canonical form costs).

Rounds alternate the variants; each figure is the best round (the least disturbed).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import psycopg

from benchmarks.environment import BenchCluster
from benchmarks.report import BenchmarkResult, Cell

PATIENTS = 200
WRITES = 2000
TABLES = ("encounters", "observations")

_WRITES = """
DO $bench$
DECLARE
    v_encounter bigint;
    v_patient bigint;
BEGIN
    FOR i IN 1..{writes} LOOP
        v_patient := {first} + (i % {patients});
        INSERT INTO encounters (patient_id, practitioner_id, organization_id, encounter_class,
                                status, started_at, ended_at, reason)
        SELECT p.id, {practitioner}, p.organization_id, 'ambulatory', 'finished',
               now() - interval '20 minutes', now(), 'Follow-up'
          FROM patients p WHERE p.id = v_patient
        RETURNING id INTO v_encounter;
        INSERT INTO observations (patient_id, encounter_id, loinc_code, display, status,
                                  value_numeric, unit, effective_at)
        VALUES (v_patient, v_encounter, '8867-4', 'Heart rate', 'final', 70, '/min', now()),
               (v_patient, v_encounter, '8480-6', 'Systolic blood pressure', 'final', 120,
                'mm[Hg]', now()),
               (v_patient, v_encounter, '8462-4', 'Diastolic blood pressure', 'final', 80,
                'mm[Hg]', now());
    END LOOP;
END
$bench$"""

_EMPTY_TRIGGER = """
CREATE OR REPLACE FUNCTION audit.record_changes() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$ BEGIN RETURN NULL; END $fn$"""

_CONTENT_HASH_CALL = re.compile(r"audit\.content_hash\(e\.id,.*?v_at\)", re.S)

Conn = psycopg.Connection[tuple[Any, ...]]
Setup = Callable[[Conn], None]


def _run(conn: Conn, sql: str) -> None:
    conn.execute(sql)


def _variants(shipped: str) -> dict[str, Setup]:
    constant_hash, replaced = _CONTENT_HASH_CALL.subn("repeat('0', 64)", shipped)
    if replaced != 3:
        raise RuntimeError("audit.record_changes() no longer computes content_hash as expected")

    def audit_off(conn: Conn) -> None:
        for table in TABLES:
            _run(conn, f"ALTER TABLE {table} DISABLE TRIGGER audit_insert")

    return {
        "audit off": audit_off,
        "as shipped": lambda conn: None,
        "empty trigger": lambda conn: _run(conn, _EMPTY_TRIGGER),
        "no content hash": lambda conn: _run(conn, constant_hash),
    }


def _timed(conn: Conn, setup: Setup, writes: str) -> float:
    """Seconds of the writes under ``setup``; everything is rolled back after."""
    with conn.transaction(force_rollback=True):
        setup(conn)
        started = time.perf_counter()
        _run(conn, writes)
        return time.perf_counter() - started


def run_audit_write_cost(
    cluster: BenchCluster, rounds: int, log: Callable[[str], None]
) -> BenchmarkResult:
    seeded = cluster.seeded_healthcare(PATIENTS)
    with psycopg.connect(seeded.admin.dsn(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT (SELECT min(id) FROM patients), (SELECT count(*) FROM patients),"
            " (SELECT min(id) FROM practitioners),"
            " pg_get_functiondef('audit.record_changes()'::regprocedure)"
        ).fetchone()
        assert row is not None
        first, patients, practitioner, shipped = row
        writes = _WRITES.format(
            writes=WRITES, first=first, patients=patients, practitioner=practitioner
        )
        variants = _variants(str(shipped))
        best: dict[str, float] = {}
        _timed(conn, variants["as shipped"], writes)  # warm: plans and caches
        names = list(variants)
        for number in range(rounds):
            shift = number % len(names)
            for name in names[shift:] + names[:shift]:
                seconds = _timed(conn, variants[name], writes)
                best[name] = min(best.get(name, seconds), seconds)
            log(f"audit-cost: round {number + 1} of {rounds} done")
    per_write = {name: best[name] / WRITES * 1e6 for name in names}
    off = per_write["audit off"]
    rows: list[list[Cell]] = [
        [name, round(micros, 1), round(micros - off, 1), round(off / micros, 2)]
        for name, micros in per_write.items()
    ]
    shipped_extra = per_write["as shipped"] - off
    notes = [
        f"best of {rounds} alternating rounds of {WRITES} writes each, "
        f"{PATIENTS} seeded patients, inside the server (no client, no commit)",
        f"of the {shipped_extra:.0f} us the shipped audit adds per write: firing the "
        f"triggers {per_write['empty trigger'] - off:.0f} us, hashing the 4 rows "
        f"{per_write['as shipped'] - per_write['no content hash']:.0f} us, the rest "
        "building and inserting the 4 audit rows",
    ]
    return BenchmarkResult(
        name="audit_write_cost",
        title="Audited write, server time per write (encounter + 3 observations), us",
        columns=["variant", "us per write", "added by audit", "off / this"],
        rows=rows,
        notes=notes,
        data={"rounds": rounds, "writes": WRITES, "patients": PATIENTS, "per_write_us": per_write},
    )
