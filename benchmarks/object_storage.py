"""Backups in object storage vs in a local folder: ``take_backup``/``restore_backup``.

The same seeded database (``TABLES`` tables of ``ROWS_PER_TABLE`` rows of hex text, about
130 MiB on disk and a dump of about 24 MiB) is backed up and restored into a new database
through ``open_store(Path)`` and through ``open_store(S3Location)``, alternating which
goes first each round. The bucket is served by moto on 127.0.0.1, from its own venv
(``.tools/moto``, installed by ``make tools``; ``$DBKEEPER_MOTO_SERVER`` names another
``moto_server``). An S3 backup is dumped into a local staging folder and then uploaded;
an S3 restore downloads every object first, so the ratio is what the transfer adds.

Alone: ``python -m benchmarks.object_storage [--repeat N]``.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from minio import Minio

from benchmarks.environment import BenchCluster
from benchmarks.report import BenchmarkResult, Cell, TargetCheck, render_result
from benchmarks.stats import ratio_of_medians
from dbkeeper.backup.create import take_backup
from dbkeeper.backup.restore import restore_backup
from dbkeeper.backup.s3.location import S3Location
from dbkeeper.backup.store import BackupStore
from dbkeeper.backup.stores import open_store
from dbkeeper.conninfo import ConnInfo
from dbkeeper.local.postgres import free_port

OBJECT_STORAGE_TARGET = 1.25
"""S3 time / folder time, for the backup and for the restore."""
TABLES = 4
ROWS_PER_TABLE = 250_000
"""Rows of two md5 hashes (hex, which compresses only about 2:1): a dump of about 24 MiB
in four table files of about 6 MiB (below PART_SIZE: the multipart path is exercised by
the network-cut test, not timed here)."""
JOBS = 2
DATABASE = "object_storage"
BUCKET = "dbkeeper-bench"
PREFIX = "object-storage"
REGION = "us-east-1"
# moto accepts any keys; these only have to be the same for the bucket and the store.
ACCESS_KEY = "bench-access-key"
SECRET_KEY = "bench-secret-key"
MOTO_VARIABLE = "DBKEEPER_MOTO_SERVER"
# Where `make tools` (tools/fetch_moto.py) installs moto, in a venv of its own.
BUILT_MOTO = Path(__file__).resolve().parent.parent / ".tools/moto/bin/moto_server"
MOTO_START_TIMEOUT = 30.0


def moto_server_binary() -> Path:
    """The moto_server to run; RuntimeError (saying how to get one) when it is missing."""
    configured = (os.environ.get(MOTO_VARIABLE) or "").strip()
    binary = Path(configured) if configured else BUILT_MOTO
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        where = f"${MOTO_VARIABLE}={configured}" if configured else str(BUILT_MOTO)
        raise RuntimeError(
            f"moto_server not found ({where}): run `make tools` to install moto into "
            f".tools/moto, or set {MOTO_VARIABLE} to a moto_server"
        )
    return binary


@contextmanager
def moto_server(binary: Path, log_path: Path) -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 until the block ends; yields its endpoint URL."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [str(binary), "-H", "127.0.0.1", "-p", str(port)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            _wait_until_answering(process, port, log_path)
            yield endpoint
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _wait_until_answering(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + MOTO_START_TIMEOUT
    while True:
        if process.poll() is not None:
            tail = log.read_text(errors="replace").strip()[-500:]
            raise RuntimeError(f"moto_server exited with {process.returncode}: {tail}")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            connection.request("GET", "/")
            connection.getresponse().read()
            return  # any answer, even an error, means it is serving
        except (OSError, http.client.HTTPException):
            pass
        finally:
            connection.close()
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"moto_server did not answer on 127.0.0.1:{port} within {MOTO_START_TIMEOUT:g} s"
            )
        time.sleep(0.1)


def create_bucket(endpoint: str) -> None:
    host = endpoint.removeprefix("http://")
    client = Minio(host, access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False, region=REGION)
    if not client.bucket_exists(BUCKET):
        client.make_bucket(BUCKET)


def seed(cluster: BenchCluster) -> ConnInfo:
    """The benchmark's database: backup_format's tables and rows."""
    cluster.postgres.create_database(DATABASE)
    admin = cluster.postgres.admin_conninfo(DATABASE)
    with psycopg.connect(admin.dsn(), autocommit=True) as conn:
        for table in range(TABLES):
            conn.execute(
                f"CREATE TABLE t{table} (id bigint PRIMARY KEY, note text, at timestamptz)"
            )
            conn.execute(
                f"INSERT INTO t{table} SELECT g, md5(g::text) || md5((g + {table})::text), now() "
                f"FROM generate_series(1, {ROWS_PER_TABLE}) g"
            )
        conn.execute("VACUUM (ANALYZE)")
    return admin


def _data_bytes(conninfo: ConnInfo) -> int:
    """The tables' size on disk, with their indexes."""
    with psycopg.connect(conninfo.dsn()) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'r' AND n.nspname = 'public'"
        ).fetchone()
    return int(row[0]) if row else 0


def _timed(step: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = step()
    return time.perf_counter() - started, value


def run_object_storage(
    cluster: BenchCluster, rounds: int, log: Callable[[str], None]
) -> BenchmarkResult:
    binary = moto_server_binary()
    log(f"object-storage: database of {TABLES} tables x {ROWS_PER_TABLE} rows")
    admin = seed(cluster)
    data_bytes = _data_bytes(admin)
    work = cluster.base_dir / "object-storage"
    work.mkdir(exist_ok=True)
    times: dict[str, list[float]] = {
        "local_backup": [], "s3_backup": [], "local_restore": [], "s3_restore": [],
    }  # fmt: skip
    sizes: dict[str, int] = {}
    with moto_server(binary, work / "moto.log") as endpoint:
        log(f"object-storage: moto_server {binary} at {endpoint}")
        create_bucket(endpoint)
        stores: dict[str, BackupStore] = {
            "local": open_store(work / "folder"),
            "s3": open_store(
                S3Location(bucket=BUCKET, prefix=PREFIX, endpoint=endpoint, region=REGION),
                credentials={"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY},
            ),
        }
        for round_number in range(rounds):
            order = ["local", "s3"] if round_number % 2 == 0 else ["s3", "local"]
            for kind in order:
                log(f"object-storage: round {round_number + 1}, {kind}")
                store = stores[kind]
                took, manifest = _timed(partial(take_backup, admin, store, jobs=JOBS))
                times[f"{kind}_backup"].append(took)
                sizes[kind] = manifest.size_bytes
                target = f"{DATABASE}_restored_{kind}_{round_number + 1}"
                restore = partial(
                    restore_backup, store, manifest.id, cluster.postgres.admin_conninfo(),
                    target_database=target, jobs=JOBS,
                )  # fmt: skip
                took, _ = _timed(restore)
                times[f"{kind}_restore"].append(took)
                cluster.postgres.drop_database(target)
                store.remove(manifest.id)
    shutil.rmtree(work, ignore_errors=True)
    return build_result(times, sizes, data_bytes, rounds)


def build_result(
    times: dict[str, list[float]], sizes: dict[str, int], data_bytes: int, rounds: int
) -> BenchmarkResult:
    mib = 1024 * 1024
    data_mib = data_bytes / mib

    def row(step: str) -> list[Cell]:
        local, s3 = times[f"local_{step}"], times[f"s3_{step}"]
        return [
            step,
            statistics.median(local),
            statistics.median(s3),
            statistics.median(s3) - statistics.median(local),
            ratio_of_medians(s3, local),
        ]

    checks = [
        TargetCheck(
            name=f"{step}: s3 / local folder",
            limit=OBJECT_STORAGE_TARGET,
            measured=ratio_of_medians(times[f"s3_{step}"], times[f"local_{step}"]),
            unit="x",
        )
        for step in ("backup", "restore")
    ]
    dump_mib = sizes.get("s3", sizes.get("local", 0)) / mib
    return BenchmarkResult(
        name="object-storage",
        title=f"Backups in object storage vs a local folder ({data_mib:.0f} MiB of tables, "
        f"{dump_mib:.1f} MiB dump)",
        columns=["step", "local median s", "s3 median s", "s3 added s", "s3 / local"],
        rows=[row("backup"), row("restore")],
        checks=checks,
        notes=[
            f"{rounds} alternating rounds, directory format, {JOBS} jobs; {TABLES} tables x "
            f"{ROWS_PER_TABLE} rows; S3 is moto_server on 127.0.0.1 (in memory), staging "
            "in the temporary folder; restore is into a new database"
        ],
        data={
            "tables": TABLES,
            "rows_per_table": ROWS_PER_TABLE,
            "rounds": rounds,
            "jobs": JOBS,
            "data_bytes": data_bytes,
            "dump_bytes": sizes,
            "seconds": times,
        },
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.object_storage",
        description="Backup and restore: object storage (moto) vs a local folder.",
    )
    p.add_argument("--repeat", type=int, default=3, help="alternating rounds (default 3)")
    args = p.parse_args(argv)
    started = time.monotonic()

    def log(message: str) -> None:
        print(f"[{time.monotonic() - started:7.1f}s] {message}", file=sys.stderr, flush=True)

    try:
        moto_server_binary()
    except RuntimeError as exc:
        print(f"object-storage: {exc}", file=sys.stderr)
        return 1
    with BenchCluster() as cluster:
        result = run_object_storage(cluster, max(1, args.repeat), log)
    print(render_result(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
