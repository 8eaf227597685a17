"""Compare pg_dump formats for dbkeeper backups: directory (parallel) vs custom.

Starts a throwaway PostgreSQL cluster, seeds databases of a few sizes (four tables of
equal size), and times ``create_backup`` and ``restore_backup`` with each format.
Prints one JSON document. Usage: ``python benchmarks/backup_format.py [rows ...]``
(rows per table; default 1000 100000 500000).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from dbkeeper.backup.catalog import BackupCatalog
from dbkeeper.backup.create import create_backup
from dbkeeper.backup.manifest import DumpFormat
from dbkeeper.backup.restore import restore_backup
from dbkeeper.local.postgres import LocalPostgres

TABLES = 4


def seed(cluster: LocalPostgres, name: str, rows: int) -> None:
    info = cluster.create_database(name)
    with psycopg.connect(info.dsn(), autocommit=True) as conn:
        for table in range(TABLES):
            conn.execute(
                f"CREATE TABLE t{table} (id bigint PRIMARY KEY, note text, at timestamptz)"
            )
            conn.execute(
                f"INSERT INTO t{table} SELECT g, md5(g::text) || repeat('x', 40), now() "
                f"FROM generate_series(1, {rows}) g"
            )


def measure(cluster: LocalPostgres, name: str, fmt: DumpFormat, work: Path) -> dict[str, object]:
    destination = work / f"{name}-{fmt}"
    started = time.monotonic()
    manifest = create_backup(cluster.admin_conninfo(name), destination, jobs=2, dump_format=fmt)
    dumped = time.monotonic() - started
    started = time.monotonic()
    result = restore_backup(
        BackupCatalog(destination), manifest.id, cluster.admin_conninfo(), jobs=2
    )
    restored = time.monotonic() - started
    cluster.drop_database(result.target_database)
    return {
        "format": fmt,
        "backup_s": round(dumped, 2),
        "restore_s": round(restored, 2),
        "size_bytes": manifest.size_bytes,
        "files": len(manifest.files),
    }


def main(argv: list[str]) -> int:
    sizes = [int(a) for a in argv] or [1000, 100000, 500000]
    work = Path(tempfile.mkdtemp(prefix="dbkeeper-bench-backup-"))
    cluster = LocalPostgres(Path(tempfile.mkdtemp(prefix="dbkeeper-bench-pg-")))
    cluster.init()
    cluster.start()
    results = []
    try:
        for rows in sizes:
            name = f"bench_{rows}"
            seed(cluster, name, rows)
            for fmt in ("custom", "directory"):
                results.append(
                    {"rows_per_table": rows, "tables": TABLES, **measure(cluster, name, fmt, work)}
                )
    finally:
        cluster.destroy()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({"benchmark": "backup_format", "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
