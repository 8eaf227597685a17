"""The servers a benchmark runs against: a throwaway PostgreSQL cluster and PgBouncers.

One ``BenchCluster`` per run. It has a login role for the benchmark clients (the same
role connects directly and through PgBouncer, whose userlist holds the role's SCRAM
verifier) and builds the seeded healthcare database once per scale, for every benchmark
that asks for it.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg
from psycopg import sql

from dbkeeper.conninfo import ConnInfo
from dbkeeper.healthcare.seed import seed_database
from dbkeeper.local.postgres import LocalPostgres, free_port
from dbkeeper.migrate import MigrationOptions, load_set, migrate
from dbkeeper.pooler.local import LocalPgBouncer
from dbkeeper.pooler.render import UserEntry
from dbkeeper.pooler.scram import scram_verifier
from dbkeeper.pooler.settings import DatabaseTarget, PgBouncerSettings

CLIENT_ROLE = "bench_client"
# Server settings closer to a small production instance than initdb's defaults; the
# rest (fsync off, synchronous_commit off) is LocalPostgres's, see docs/performance.md.
SERVER_SETTINGS = {
    "shared_buffers": "512MB",
    "effective_cache_size": "4GB",
    "work_mem": "16MB",
    "maintenance_work_mem": "256MB",
    "max_wal_size": "4GB",
    "checkpoint_timeout": "15min",
}


@dataclass(frozen=True)
class SeededDatabase:
    """The healthcare schema at head with ``patients`` seeded patients."""

    name: str
    patients: int
    seed_seconds: float
    rows: dict[str, int]
    client: ConnInfo
    admin: ConnInfo


@dataclass
class BenchCluster:
    """A PostgreSQL cluster for one benchmark run; a context manager that removes it."""

    base_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="dbkeeper-bench-")))
    postgres: LocalPostgres = field(init=False)
    client_password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    client_verifier: str = field(init=False)
    _seeded: dict[int, SeededDatabase] = field(default_factory=dict)
    _poolers: list[tuple[LocalPgBouncer, Path]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.base_dir.chmod(0o755)
        self.postgres = LocalPostgres(self.base_dir / "pg")
        self.client_verifier = scram_verifier(self.client_password)

    def __enter__(self) -> BenchCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        self.postgres.init()
        with (self.postgres.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n# dbkeeper benchmarks\n")
            for key, value in SERVER_SETTINGS.items():
                conf.write(f"{key} = '{value}'\n")
        self.postgres.start()
        with psycopg.connect(self.postgres.admin_conninfo().dsn(), autocommit=True) as conn:
            # A superuser: the benchmarks read and write every table, and pgbench creates
            # its own; privileges are not what is being measured.
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
                    sql.Identifier(CLIENT_ROLE), sql.Literal(self.client_verifier)
                )
            )

    def close(self) -> None:
        for pooler, folder in reversed(self._poolers):
            pooler.stop()
            shutil.rmtree(folder, ignore_errors=True)
        self._poolers.clear()
        self.postgres.destroy()
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def client_conninfo(self, dbname: str) -> ConnInfo:
        admin = self.postgres.admin_conninfo(dbname)
        return ConnInfo(admin.host, admin.port, dbname, CLIENT_ROLE, self.client_password)

    def create_database(self, name: str) -> ConnInfo:
        self.postgres.create_database(name)
        return self.client_conninfo(name)

    def seeded_healthcare(self, patients: int, seed: int = 42) -> SeededDatabase:
        """The healthcare database with ``patients`` patients, built on first use."""
        if patients in self._seeded:
            return self._seeded[patients]
        name = f"healthcare_{patients}"
        self.postgres.create_database(name)
        admin = self.postgres.admin_conninfo(name)
        migrate(admin, load_set("healthcare"), MigrationOptions(target="head", lint_mode="off"))
        started = time.monotonic()
        summary = seed_database(admin, patients, seed)
        with psycopg.connect(admin.dsn(), autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE)")
        seeded = SeededDatabase(
            name=name,
            patients=patients,
            seed_seconds=round(time.monotonic() - started, 1),
            rows=dict(summary.rows),
            client=self.client_conninfo(name),
            admin=admin,
        )
        self._seeded[patients] = seeded
        return seeded

    def start_pooler(
        self, dbname: str, alias: str = "app", binary: str | None = None, **overrides: Any
    ) -> LocalPgBouncer:
        """A PgBouncer in transaction mode in front of ``dbname``, served as ``alias``.

        ``binary`` is the pgbouncer to run (default: ``find_pgbouncer()``).
        """
        folder = Path(tempfile.mkdtemp(prefix="pgbouncer-", dir=self.base_dir))
        folder.chmod(0o755)
        values: dict[str, Any] = {
            "databases": (DatabaseTarget(alias, "127.0.0.1", self.postgres.port, dbname),),
            "listen_port": free_port(),
            "pool_mode": "transaction",
            "default_pool_size": 20,
            "max_client_conn": 200,
            "server_tls_sslmode": "disable",
        }
        values.update(overrides)
        pooler = LocalPgBouncer(
            folder,
            PgBouncerSettings(**values),
            [UserEntry(CLIENT_ROLE, self.client_verifier)],
            binary=binary,
        )
        self._poolers.append((pooler, folder))
        pooler.start()
        return pooler

    def pooled_conninfo(self, pooler: LocalPgBouncer, alias: str = "app") -> ConnInfo:
        return pooler.client_conninfo(alias, CLIENT_ROLE, self.client_password)
