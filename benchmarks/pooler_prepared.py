"""Prepared statements through the pooler: pgbench -S -M prepared, direct and pooled.

PgBouncer 1.21 and later keep protocol-level prepared statements working in transaction
mode (``max_prepared_statements``, which dbkeeper renders for them), so applications may
keep them on. This measures what that costs: the same alternating direct/pooled rounds
as the pooler overhead benchmark, with prepared statements, through a pgbouncer new
enough: the system's when it is, else the one ``make tools`` builds into
``.tools/pgbouncer-1.24``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.environment import BenchCluster
from benchmarks.pooler_overhead import (
    CLIENT_COUNTS,
    PGBENCH_SCALE,
    Medians,
    PgbenchRun,
    direct_and_pooled_runs,
    run_pgbench,
)
from benchmarks.report import BenchmarkResult, Cell
from dbkeeper.pooler.local import find_pgbouncer, pgbouncer_version

DATABASE = "pgbench_prepared"
PREPARED_SINCE = (1, 21)
# Where tools/build_pgbouncer.sh installs PgBouncer 1.24.
BUILT_PGBOUNCER = Path(__file__).resolve().parent.parent / ".tools/pgbouncer-1.24/bin/pgbouncer"


def pgbouncer_with_prepared_statements() -> str:
    """A pgbouncer that keeps prepared statements in transaction mode."""
    candidates = [find_pgbouncer()]
    if BUILT_PGBOUNCER.is_file():
        candidates.append(str(BUILT_PGBOUNCER))
    for binary in candidates:
        if pgbouncer_version(binary) >= PREPARED_SINCE:
            return binary
    found = ", ".join(f"{b} {'.'.join(map(str, pgbouncer_version(b)))}" for b in candidates)
    raise RuntimeError(
        f"no pgbouncer 1.21 or newer (found {found}): run `make tools` to build PgBouncer 1.24"
    )


def run_pooler_prepared(
    cluster: BenchCluster, seconds: float, rounds: int, log: Callable[[str], None]
) -> BenchmarkResult:
    binary = pgbouncer_with_prepared_statements()
    version = ".".join(map(str, pgbouncer_version(binary)))
    direct = cluster.create_database(DATABASE)
    log(f"pooler-prepared: pgbench -i -s {PGBENCH_SCALE}; pgbouncer {version} ({binary})")
    run_pgbench(["-i", "-q", "-s", str(PGBENCH_SCALE)], direct, timeout=600)
    pooler = cluster.start_pooler(DATABASE, binary=binary)
    pooled = cluster.pooled_conninfo(pooler)
    runs = direct_and_pooled_runs(
        direct, pooled, seconds, rounds, log, label="pooler-prepared", protocol="prepared"
    )
    return build_result(runs, seconds, rounds, version, pooler.settings.max_prepared_statements)


def build_result(
    runs: dict[tuple[str, int], list[PgbenchRun]],
    seconds: float,
    rounds: int,
    version: str,
    max_prepared_statements: int,
) -> BenchmarkResult:
    rows: list[list[Cell]] = []
    data: dict[str, Any] = {
        "rounds": rounds,
        "seconds_per_run": seconds,
        "pgbouncer": version,
        "max_prepared_statements": max_prepared_statements,
        "by_clients": {},
    }
    for clients in CLIENT_COUNTS:
        m = Medians.of(runs, clients)
        added_us = m.added_latency_us
        rows.append(
            [clients, m.direct_tps, m.pooled_tps, m.direct_ms * 1000, m.pooled_ms * 1000, added_us]
        )
        data["by_clients"][str(clients)] = {
            **m.runs_data(),
            "latency_added_us": round(added_us, 1),
        }
    return BenchmarkResult(
        name="pooler-prepared",
        title="Prepared statements through the pooler (pgbench -S -M prepared, median of rounds)",
        columns=[
            "clients",
            "direct tps",
            "pooled tps",
            "direct µs/tx",
            "pooled µs/tx",
            "added latency µs",
        ],
        rows=rows,
        notes=[
            f"PgBouncer {version} in transaction mode, max_prepared_statements = "
            f"{max_prepared_statements}, on the same 127.0.0.1 host; pgbench scale "
            f"{PGBENCH_SCALE}, {rounds} alternating rounds of {seconds:g} s"
        ],
        data=data,
    )
