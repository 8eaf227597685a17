"""Workload latency: the healthcare application's queries at scale, direct and pooled.

Five reads an application of the healthcare schema makes all day, and one write path
(a new encounter with three observations, through the audit triggers), each run by 1 and
8 client threads for a fixed time, directly against PostgreSQL and through PgBouncer in
transaction mode. Each read query's plan is captured with EXPLAIN (ANALYZE, BUFFERS) and
checked for sequential scans of large tables.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import psycopg

from benchmarks.audit_sealing import SealerRun, seal_all, sealing, verify_whole_chain
from benchmarks.environment import BenchCluster, SeededDatabase
from benchmarks.plans import LARGE_TABLE_ROWS, execution_ms, large_seq_scans
from benchmarks.report import BenchmarkResult, Cell, TargetCheck
from benchmarks.stats import LatencySummary, summarize_latencies
from dbkeeper.conninfo import ConnInfo, redact
from dbkeeper.settings import Settings

READ_P99_TARGET_MS = 5.0
WRITE_P99_TARGET_MS = 10.0
WRITE_RATIO_TARGET = 0.8
SEAL_INTERVAL_S = Settings().audit_seal_interval.total_seconds()
TARGET_SCALE = 100_000
TARGET_CLIENTS = 8
CLIENT_COUNTS = (1, 8)
SAMPLE_PATIENTS = 2000
SAMPLE_DAYS = 500
WARMUP_SECONDS = 0.5
BENCH_ACTOR = "dbkeeper-bench"

Connection = psycopg.Connection[tuple[Any, ...]]
Mode = Literal["direct", "pgbouncer"]


@dataclass(frozen=True)
class SamplePatient:
    id: int
    organization_id: int
    mrn: str
    practitioner_id: int


@dataclass(frozen=True)
class WorkloadParameters:
    """Real keys drawn from the seeded data, so every query finds what it looks for."""

    patients: Sequence[SamplePatient]
    practitioner_days: Sequence[tuple[int, date]]
    as_of: datetime


PATIENT_BY_MRN = """
SELECT id, given_name, family_name, birth_date, sex, phone
FROM patients WHERE organization_id = %(organization)s AND mrn = %(mrn)s"""

LAST_ENCOUNTERS = """
SELECT id, encounter_class, status, started_at, ended_at, reason, practitioner_id
FROM encounters WHERE patient_id = %(patient)s ORDER BY started_at DESC LIMIT 20"""

OBSERVATIONS_OF_A_YEAR = """
SELECT id, loinc_code, display, value_numeric, value_text, unit, effective_at
FROM observations
WHERE patient_id = %(patient)s AND effective_at >= %(since)s AND effective_at < %(until)s
ORDER BY effective_at"""


# A patient's trail: every audit entry of the patient and of the rows that belong to
# them, newest first; each entry carries its patient (one index range).
AUDIT_TRAIL = """
SELECT l.id, l.table_name, l.row_key, l.action, l.actor, l.occurred_at
FROM audit.log l WHERE l.patient_id = %(patient)s
ORDER BY l.id DESC LIMIT 200"""

PRACTITIONER_DAY = """
SELECT a.id, a.starts_at, a.ends_at, a.status, a.reason, p.mrn, p.given_name, p.family_name
FROM appointments a JOIN patients p ON p.id = a.patient_id
WHERE a.practitioner_id = %(practitioner)s AND a.starts_at >= %(day)s
  AND a.starts_at < %(next_day)s
ORDER BY a.starts_at"""

NEW_ENCOUNTER = """
INSERT INTO encounters (patient_id, practitioner_id, organization_id, encounter_class,
                        status, started_at, ended_at, reason)
VALUES (%(patient)s, %(practitioner)s, %(organization)s, 'ambulatory', 'finished',
        now() - interval '20 minutes', now(), 'Follow-up')
RETURNING id"""

NEW_OBSERVATIONS = """
INSERT INTO observations (patient_id, encounter_id, loinc_code, display, status,
                          value_numeric, unit, effective_at)
VALUES (%(patient)s, %(encounter)s, '8867-4', 'Heart rate', 'final', %(pulse)s, '/min', now()),
       (%(patient)s, %(encounter)s, '8480-6', 'Systolic blood pressure', 'final',
        %(systolic)s, 'mm[Hg]', now()),
       (%(patient)s, %(encounter)s, '8462-4', 'Diastolic blood pressure', 'final',
        %(diastolic)s, 'mm[Hg]', now())"""

ParamsFor = Callable[[WorkloadParameters, random.Random], dict[str, Any]]


def _patient_params(params: WorkloadParameters, rng: random.Random) -> dict[str, Any]:
    patient = rng.choice(params.patients)
    return {"patient": patient.id, "organization": patient.organization_id, "mrn": patient.mrn}


def _year_params(params: WorkloadParameters, rng: random.Random) -> dict[str, Any]:
    # Any year of the five-year history the generator writes.
    until = params.as_of - timedelta(days=rng.randint(0, 4 * 365))
    return {**_patient_params(params, rng), "since": until - timedelta(days=365), "until": until}


def _day_params(params: WorkloadParameters, rng: random.Random) -> dict[str, Any]:
    practitioner, day = rng.choice(params.practitioner_days)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return {"practitioner": practitioner, "day": start, "next_day": start + timedelta(days=1)}


@dataclass(frozen=True)
class ReadQuery:
    name: str
    sql: str
    params: ParamsFor


READS: tuple[ReadQuery, ...] = (
    ReadQuery("patient_by_mrn", PATIENT_BY_MRN, _patient_params),
    ReadQuery("last_20_encounters", LAST_ENCOUNTERS, _patient_params),
    ReadQuery("observations_of_a_year", OBSERVATIONS_OF_A_YEAR, _year_params),
    ReadQuery("audit_trail_of_patient", AUDIT_TRAIL, _patient_params),
    ReadQuery("practitioner_day", PRACTITIONER_DAY, _day_params),
)
WRITE_NAME = "new_encounter_3_obs"
WRITE_OFF_NAME = "new_encounter_3_obs, audit off"
# The tables the write path changes, whose audit triggers the comparison turns off.
WRITE_TABLES = ("encounters", "observations")


@contextmanager
def audit_triggers_off(admin: ConnInfo) -> Iterator[None]:
    """The same write without its audit triggers (nothing else differs)."""
    with psycopg.connect(admin.dsn(), autocommit=True) as conn:
        for table in WRITE_TABLES:
            conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER audit_insert")
        try:
            yield
        finally:
            for table in WRITE_TABLES:
                conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER audit_insert")


def run_read(query: ReadQuery) -> Callable[[Connection, WorkloadParameters, random.Random], None]:
    def run(conn: Connection, params: WorkloadParameters, rng: random.Random) -> None:
        conn.execute(query.sql, query.params(params, rng)).fetchall()

    return run


def run_new_encounter(conn: Connection, params: WorkloadParameters, rng: random.Random) -> None:
    patient = rng.choice(params.patients)
    with conn.transaction():
        conn.execute("SELECT set_config('dbkeeper.actor', %s, true)", (BENCH_ACTOR,))
        row = conn.execute(
            NEW_ENCOUNTER,
            {
                "patient": patient.id,
                "practitioner": patient.practitioner_id,
                "organization": patient.organization_id,
            },
        ).fetchone()
        assert row is not None
        conn.execute(
            NEW_OBSERVATIONS,
            {
                "patient": patient.id,
                "encounter": row[0],
                "pulse": rng.randint(55, 100),
                "systolic": rng.randint(100, 150),
                "diastolic": rng.randint(60, 95),
            },
        )


Operation = Callable[[Connection, WorkloadParameters, random.Random], None]


def operations() -> list[tuple[str, Operation]]:
    ops: list[tuple[str, Operation]] = [(query.name, run_read(query)) for query in READS]
    ops.append((WRITE_NAME, run_new_encounter))
    return ops


def load_parameters(conninfo: ConnInfo, seed: int = 7) -> WorkloadParameters:
    rng = random.Random(seed)
    with psycopg.connect(conninfo.dsn()) as conn:
        bounds = conn.execute(
            "SELECT (SELECT max(id) FROM patients), (SELECT max(id) FROM appointments),"
            " (SELECT max(started_at) FROM encounters)"
        ).fetchone()
        if bounds is None or bounds[0] is None:
            raise RuntimeError("the database holds no patients")
        max_patient, max_appointment, last_encounter = bounds
        wanted_patients = [rng.randint(1, max_patient) for _ in range(SAMPLE_PATIENTS)]
        rows = conn.execute(
            """SELECT p.id, p.organization_id, p.mrn,
                      (SELECT e.practitioner_id FROM encounters e
                       WHERE e.patient_id = p.id ORDER BY e.started_at DESC LIMIT 1)
               FROM patients p WHERE p.id = ANY(%s)""",
            (wanted_patients,),
        ).fetchall()
        patients = [SamplePatient(int(r[0]), int(r[1]), str(r[2]), int(r[3])) for r in rows]
        wanted_appointments = [rng.randint(1, max_appointment) for _ in range(SAMPLE_DAYS)]
        days = conn.execute(
            "SELECT practitioner_id, (starts_at AT TIME ZONE 'UTC')::date FROM appointments"
            " WHERE id = ANY(%s)",
            (wanted_appointments,),
        ).fetchall()
    return WorkloadParameters(
        patients=patients,
        practitioner_days=[(int(r[0]), r[1]) for r in days],
        as_of=last_encounter + timedelta(days=8),
    )


@dataclass
class CellResult:
    mode: Mode
    clients: int
    operation: str
    summary: LatencySummary | None
    errors: int
    first_error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "clients": self.clients,
            "operation": self.operation,
            "latency": self.summary.to_dict() if self.summary else None,
            "errors": self.errors,
            "first_error": self.first_error,
        }


def connect(conninfo: ConnInfo, mode: Mode) -> Connection:
    # Transaction pooling cannot keep server-side prepared statements: psycopg must not
    # prepare through PgBouncer. Direct connections keep psycopg's default (prepare after
    # five executions), as an application would.
    if mode == "pgbouncer":
        return psycopg.connect(conninfo.dsn(), autocommit=True, prepare_threshold=None)
    return psycopg.connect(conninfo.dsn(), autocommit=True)


def run_cell(
    conninfo: ConnInfo,
    mode: Mode,
    clients: int,
    name: str,
    operation: Operation,
    params: WorkloadParameters,
    seconds: float,
) -> CellResult:
    """Run ``operation`` on ``clients`` threads for ``seconds``; one connection each."""
    connections = [connect(conninfo, mode) for _ in range(clients)]
    per_thread: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []
    ready = threading.Barrier(clients + 1)
    go = threading.Event()
    deadline = [0.0]

    def work(index: int) -> None:
        conn = connections[index]
        rng = random.Random(index * 7919 + len(name))
        samples = per_thread[index]
        warm_until = time.perf_counter() + WARMUP_SECONDS
        while time.perf_counter() < warm_until:
            _attempt(operation, conn, params, rng, errors)
        ready.wait()
        go.wait()
        stop = deadline[0]
        clock = time.perf_counter
        while True:
            started = clock()
            if started >= stop:
                return
            if _attempt(operation, conn, params, rng, errors):
                samples.append(clock() - started)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(clients)]
    try:
        for thread in threads:
            thread.start()
        # Measuring starts when every client has warmed up.
        ready.wait()
        started = time.perf_counter()
        deadline[0] = started + seconds
        go.set()
        for thread in threads:
            thread.join(seconds + 60)
        wall = time.perf_counter() - started
    finally:
        for conn in connections:
            conn.close()
    samples = [s for thread_samples in per_thread for s in thread_samples]
    return CellResult(
        mode=mode,
        clients=clients,
        operation=name,
        summary=summarize_latencies(samples, wall) if samples else None,
        errors=len(errors),
        first_error=errors[0] if errors else None,
    )


def _attempt(
    operation: Operation,
    conn: Connection,
    params: WorkloadParameters,
    rng: random.Random,
    errors: list[str],
) -> bool:
    try:
        operation(conn, params, rng)
    except psycopg.Error as exc:
        errors.append(redact(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)))
        return False
    return True


def table_sizes(conninfo: ConnInfo) -> dict[str, int]:
    with psycopg.connect(conninfo.dsn()) as conn:
        rows = conn.execute(
            "SELECT n.nspname || '.' || c.relname, greatest(c.reltuples, 0)::bigint"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'p') AND n.nspname IN ('public', 'audit')"
        ).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


def explain_reads(conninfo: ConnInfo, params: WorkloadParameters) -> list[dict[str, Any]]:
    """EXPLAIN (ANALYZE, BUFFERS) of each read with real keys, and its seq-scan findings."""
    sizes = table_sizes(conninfo)
    rng = random.Random(11)
    captured: list[dict[str, Any]] = []
    with psycopg.connect(conninfo.dsn(), autocommit=True) as conn:
        cursor = psycopg.ClientCursor(conn)
        for query in READS:
            values = query.params(params, rng)
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + query.sql, values)
            row = cursor.fetchone()
            assert row is not None
            plan = row[0]
            findings = large_seq_scans(plan, sizes)
            captured.append(
                {
                    "query": query.name,
                    "sql": " ".join(query.sql.split()),
                    "parameters": {k: str(v) for k, v in values.items()},
                    "execution_ms": execution_ms(plan),
                    "seq_scans_on_large_tables": [f.describe() for f in findings],
                    "plan": plan,
                }
            )
    return captured


def run_workload(
    cluster: BenchCluster, scale: int, seconds: float, log: Callable[[str], None]
) -> BenchmarkResult:
    log(f"workload: seeding {scale} patients (once per run)")
    seeded: SeededDatabase = cluster.seeded_healthcare(scale)
    log(f"workload: seeded in {seeded.seed_seconds} s: {seeded.rows}")
    initial_rows, initial_seconds = seal_all(seeded.admin)
    log(f"workload: sealed the seeded audit trail ({initial_rows} rows) in {initial_seconds} s")
    params = load_parameters(seeded.client)
    plans = explain_reads(seeded.client, params)
    pooler = cluster.start_pooler(seeded.name)
    targets: dict[Mode, ConnInfo] = {
        "direct": seeded.client,
        "pgbouncer": cluster.pooled_conninfo(pooler),
    }
    cells: list[CellResult] = []
    sealers: dict[tuple[Mode, int], SealerRun] = {}
    for mode in ("direct", "pgbouncer"):
        for clients in CLIENT_COUNTS:
            for name, operation in operations():
                log(f"workload: {mode}, {clients} clients, {name}")
                if name != WRITE_NAME:
                    cells.append(
                        run_cell(targets[mode], mode, clients, name, operation, params, seconds)
                    )
                    continue
                # The audited write with the sealer running, then the same write with
                # the audit triggers off: the comparison is made in the same run.
                with sealing(seeded.admin, SEAL_INTERVAL_S) as sealer:
                    cells.append(
                        run_cell(targets[mode], mode, clients, name, operation, params, seconds)
                    )
                sealers[(mode, clients)] = sealer
                log(f"workload: {mode}, {clients} clients, {WRITE_OFF_NAME}")
                with audit_triggers_off(seeded.admin):
                    cells.append(
                        run_cell(
                            targets[mode], mode, clients, WRITE_OFF_NAME, operation, params, seconds
                        )
                    )
    result = build_result(cells, plans, seeded, scale, seconds)
    _add_audit_results(result, cells, sealers, (initial_rows, initial_seconds))
    result.notes.append(verify_whole_chain(seeded.admin))
    return result


def _per_second(cells: Sequence[CellResult], mode: Mode, clients: int, name: str) -> float | None:
    for cell in cells:
        if (cell.mode, cell.clients, cell.operation) == (mode, clients, name) and cell.summary:
            return cell.summary.per_second
    return None


def _add_audit_results(
    result: BenchmarkResult,
    cells: Sequence[CellResult],
    sealers: dict[tuple[Mode, int], SealerRun],
    initial: tuple[int, float],
) -> None:
    for mode in ("direct", "pgbouncer"):
        audited = _per_second(cells, mode, TARGET_CLIENTS, WRITE_NAME)
        off = _per_second(cells, mode, TARGET_CLIENTS, WRITE_OFF_NAME)
        ratio = round(audited / off, 2) if audited and off else None
        result.checks.append(
            TargetCheck(
                name=f"audited / unaudited write throughput, {mode}, {TARGET_CLIENTS} clients",
                limit=WRITE_RATIO_TARGET,
                measured=ratio,
                unit="x",
                higher_is_better=True,
                note=f"{audited} vs {off} writes/s",
            )
        )
    for (mode, clients), sealer in sealers.items():
        summary = sealer.summary()
        result.notes.append(
            f"sealer during the audited write, {mode}, {clients} clients: "
            + ", ".join(f"{k} {v}" for k, v in summary.items() if k != "errors")
            + (f"; errors: {summary['errors']}" if summary["errors"] else "")
        )
        if clients == TARGET_CLIENTS:
            result.checks.append(
                TargetCheck(
                    name=f"seal lag p99 (commit to seal), {mode}, {clients} clients",
                    limit=2 * SEAL_INTERVAL_S,
                    measured=summary["lag_p99_s"],
                    unit="s",
                    note=f"seal every {SEAL_INTERVAL_S:g} s; "
                    f"{summary['unsealed_after_run']} rows unsealed at the end",
                )
            )
    result.notes.append(f"initial seal of the seeded trail: {initial[0]} rows in {initial[1]} s")
    result.data["sealers"] = {f"{m}/{c}": s.summary() for (m, c), s in sealers.items()}


def build_result(
    cells: Sequence[CellResult],
    plans: Sequence[dict[str, Any]],
    seeded: SeededDatabase,
    scale: int,
    seconds: float,
) -> BenchmarkResult:
    rows: list[list[Cell]] = []
    for cell in cells:
        s = cell.summary
        rows.append(
            [
                cell.mode,
                cell.clients,
                cell.operation,
                s.count if s else 0,
                round(s.per_second, 1) if s else None,
                s.mean_ms if s else None,
                s.p50_ms if s else None,
                s.p95_ms if s else None,
                s.p99_ms if s else None,
                s.max_ms if s else None,
                cell.errors,
            ]
        )
    checks: list[TargetCheck] = []
    at_scale = "" if scale >= TARGET_SCALE else f" (run at {scale} patients, target at 100k)"
    for cell in cells:
        if cell.mode != "pgbouncer" or cell.clients != TARGET_CLIENTS:
            continue
        if cell.operation == WRITE_OFF_NAME:
            continue
        limit = WRITE_P99_TARGET_MS if cell.operation == WRITE_NAME else READ_P99_TARGET_MS
        checks.append(
            TargetCheck(
                name=f"p99 {cell.operation}, pgbouncer, {TARGET_CLIENTS} clients{at_scale}",
                limit=limit,
                measured=cell.summary.p99_ms if cell.summary else None,
                unit="ms",
            )
        )
    for plan in plans:
        checks.append(
            TargetCheck(
                name=f"seq scans on tables >= {LARGE_TABLE_ROWS} rows: {plan['query']}",
                limit=0,
                measured=len(plan["seq_scans_on_large_tables"]),
                unit="scans",
                note="; ".join(plan["seq_scans_on_large_tables"]),
            )
        )
    notes = [
        f"{seeded.patients} patients; rows: "
        + ", ".join(f"{t} {n}" for t, n in seeded.rows.items()),
        f"{seconds:g} s per cell after a {WARMUP_SECONDS:g} s warm-up per client;"
        " direct connections let psycopg prepare statements, pooled ones cannot",
    ]
    for plan in plans:
        for finding in plan["seq_scans_on_large_tables"]:
            notes.append(f"plan of {plan['query']}: {finding}")
    return BenchmarkResult(
        name="latency",
        title=f"Workload latency ({scale} patients, ms)",
        columns=[
            "mode",
            "clients",
            "operation",
            "count",
            "ops/s",
            "mean",
            "p50",
            "p95",
            "p99",
            "max",
            "errors",
        ],
        rows=rows,
        checks=checks,
        notes=notes,
        data={
            "scale": scale,
            "seconds_per_cell": seconds,
            "seed_seconds": seeded.seed_seconds,
            "rows": seeded.rows,
            "cells": [cell.to_dict() for cell in cells],
            "plans": list(plans),
        },
    )
