"""Backup overhead: ``dbkeeper backup create``/``restore`` vs plain pg_dump/pg_restore.

The same seeded healthcare database, alternating which tool goes first each round, both
in the directory format with the same number of parallel jobs. dbkeeper's backup adds
a snapshot-consistent row count of every table, sha256 checksums of every file and a
manifest; its restore checks those checksums first and creates the target database.
The plain restore creates its database too (``createdb``), so both do the same work.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks.environment import BenchCluster
from benchmarks.report import BenchmarkResult, Cell, TargetCheck
from benchmarks.stats import ratio_of_medians
from dbkeeper.conninfo import ConnInfo
from dbkeeper.local.postgres import find_pg_bindir

OVERHEAD_TARGET = 1.10
JOBS = 2


def _run(args: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(
        args, env=env, capture_output=True, text=True, timeout=3600, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{Path(args[0]).name} failed: {result.stderr.strip()[-500:]}")
    return result.stdout


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


class Tools:
    """The two ways of taking and restoring a backup of one database."""

    def __init__(self, cluster: BenchCluster, database: ConnInfo, work: Path) -> None:
        self.cluster = cluster
        self.database = database
        self.work = work
        self.bindir = find_pg_bindir()
        self.dbkeeper = str(Path(sys.executable).parent / "dbkeeper")
        self.env = {**os.environ, "PGPASSWORD": database.password or ""}
        self.libpq = ["-h", database.host, "-p", str(database.port), "-U", database.user]
        self.counter = 0

    def _name(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}_{self.counter}"

    def dbkeeper_create(self) -> tuple[Path, str]:
        destination = self.work / self._name("dbk")
        env = {**self.env, "DBKEEPER_DSN": self.database.dsn()}
        output = _run(
            [self.dbkeeper, "backup", "create", "--destination", str(destination),
             "--jobs", str(JOBS), "--output", "json"],
            env,
        )  # fmt: skip
        backup_id = str(json.loads(output)["id"])
        return destination, backup_id

    def dbkeeper_restore(self, destination: Path, backup_id: str) -> str:
        target = self._name("dbk_restored")
        admin = self.cluster.postgres.admin_conninfo()
        env = {**self.env, "DBKEEPER_DSN": admin.dsn()}
        _run(
            [self.dbkeeper, "backup", "restore", backup_id, "--destination", str(destination),
             "--jobs", str(JOBS), "--target-database", target, "--output", "json"],
            env,
        )  # fmt: skip
        return target

    def plain_dump(self) -> Path:
        folder = self.work / self._name("plain")
        _run(
            [str(self.bindir / "pg_dump"), *self.libpq, "-Fd", "-j", str(JOBS),
             "-f", str(folder), self.database.dbname],
            self.env,
        )  # fmt: skip
        return folder

    def plain_restore(self, folder: Path) -> str:
        target = self._name("plain_restored")
        _run([str(self.bindir / "createdb"), *self.libpq, "-T", "template0", target], self.env)
        _run(
            [str(self.bindir / "pg_restore"), *self.libpq, "-j", str(JOBS), "--exit-on-error",
             "-d", target, str(folder)],
            self.env,
        )  # fmt: skip
        return target


def _timed(step: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = step()
    return time.perf_counter() - started, value


def run_backup_overhead(
    cluster: BenchCluster, patients: int, rounds: int, log: Callable[[str], None]
) -> BenchmarkResult:
    log(f"backup: database of {patients} patients")
    seeded = cluster.seeded_healthcare(patients)
    work = cluster.base_dir / "backups"
    work.mkdir(exist_ok=True)
    tools = Tools(cluster, seeded.admin, work)
    times: dict[str, list[float]] = {
        "dbkeeper_create": [], "pg_dump": [], "dbkeeper_restore": [], "pg_restore": [],
    }  # fmt: skip
    sizes: dict[str, int] = {}
    database_bytes = _database_bytes(seeded.admin)
    for round_number in range(rounds):
        order = ["dbkeeper", "plain"] if round_number % 2 == 0 else ["plain", "dbkeeper"]
        for tool in order:
            log(f"backup: round {round_number + 1}, {tool}")
            if tool == "dbkeeper":
                took, (destination, backup_id) = _timed(tools.dbkeeper_create)
                times["dbkeeper_create"].append(took)
                sizes["dbkeeper"] = _folder_bytes(destination)
                took, restored = _timed(partial(tools.dbkeeper_restore, destination, backup_id))
                times["dbkeeper_restore"].append(took)
                cluster.postgres.drop_database(restored)
                shutil.rmtree(destination, ignore_errors=True)
            else:
                took, folder = _timed(tools.plain_dump)
                times["pg_dump"].append(took)
                sizes["plain"] = _folder_bytes(folder)
                took, restored = _timed(partial(tools.plain_restore, folder))
                times["pg_restore"].append(took)
                cluster.postgres.drop_database(restored)
                shutil.rmtree(folder, ignore_errors=True)
    return build_result(times, sizes, database_bytes, patients, rounds)


def _database_bytes(conninfo: ConnInfo) -> int:
    import psycopg

    with psycopg.connect(conninfo.dsn()) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return int(row[0]) if row else 0


def build_result(
    times: dict[str, list[float]],
    sizes: dict[str, int],
    database_bytes: int,
    patients: int,
    rounds: int,
) -> BenchmarkResult:
    mib = 1024 * 1024
    database_mib = database_bytes / mib

    def row(name: str, key: str, base: str, size_key: str | None) -> list[Cell]:
        seconds = statistics.median(times[key])
        dump_mib = sizes.get(size_key, 0) / mib if size_key else None
        return [
            name,
            seconds,
            database_mib / seconds,
            dump_mib,
            ratio_of_medians(times[key], times[base]),
        ]

    rows = [
        row("dbkeeper backup create", "dbkeeper_create", "pg_dump", "dbkeeper"),
        row("pg_dump -Fd -j2", "pg_dump", "pg_dump", "plain"),
        row("dbkeeper backup restore", "dbkeeper_restore", "pg_restore", None),
        row("createdb + pg_restore -j2", "pg_restore", "pg_restore", None),
    ]
    checks = [
        TargetCheck(
            name="dbkeeper backup create / pg_dump",
            limit=OVERHEAD_TARGET,
            measured=ratio_of_medians(times["dbkeeper_create"], times["pg_dump"]),
            unit="x",
        ),
        TargetCheck(
            name="dbkeeper backup restore / pg_restore",
            limit=OVERHEAD_TARGET,
            measured=ratio_of_medians(times["dbkeeper_restore"], times["pg_restore"]),
            unit="x",
        ),
    ]
    return BenchmarkResult(
        name="backup",
        title=f"Backup overhead ({patients} patients, {database_mib:.0f} MiB database)",
        columns=["step", "median s", "MiB/s (database size)", "dump MiB", "vs plain"],
        rows=rows,
        checks=checks,
        notes=[
            f"{rounds} alternating rounds, directory format, {JOBS} jobs; MiB/s is the"
            " on-disk database size (pg_database_size) divided by the time"
        ],
        data={
            "patients": patients,
            "rounds": rounds,
            "database_bytes": database_bytes,
            "dump_bytes": sizes,
            "seconds": times,
        },
    )
