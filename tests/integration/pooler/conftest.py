"""Fixtures for the pooler tests: a login role with a SCRAM verifier, real pgbouncers.

The role's verifier is computed by dbkeeper and set on PostgreSQL with ``ALTER ROLE``;
the very same string goes into userlist.txt, which is how the pooler logs in to the
server without a plaintext password anywhere.
"""

from __future__ import annotations

import shutil
import socket
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from dbkeeper.conninfo import ConnInfo
from dbkeeper.local.postgres import LocalPostgres, free_port
from dbkeeper.pooler.local import LocalPgBouncer
from dbkeeper.pooler.render import UserEntry
from dbkeeper.pooler.scram import scram_verifier
from dbkeeper.pooler.settings import DatabaseTarget, PgBouncerSettings
from tests.integration.pooler.binaries import pgbouncer_binary

__all__ = ["pgbouncer_binary"]  # a fixture, for the modules that run on both pgbouncers

ALIAS = "app"


@dataclass(frozen=True)
class PoolerRole:
    name: str
    password: str
    verifier: str

    @property
    def entry(self) -> UserEntry:
        return UserEntry(self.name, self.verifier)


def create_role(
    cluster: LocalPostgres, name: str, password: str, verifier: str | None = None
) -> PoolerRole:
    verifier = verifier or scram_verifier(password)
    with psycopg.connect(cluster.admin_conninfo().dsn(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(verifier)
            )
        )
    return PoolerRole(name, password, verifier)


@pytest.fixture(scope="session")
def pooler_role(pg_cluster: LocalPostgres) -> PoolerRole:
    """A login role whose stored verifier dbkeeper computed."""
    return create_role(pg_cluster, f"pooler_app_{uuid.uuid4().hex[:8]}", "app-" + uuid.uuid4().hex)


def make_temp_dir(prefix: str) -> Path:
    # Not pytest's tmp_path: its parents are private to root and pgbouncer runs unprivileged.
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@pytest.fixture
def pooler_dir() -> Iterator[Path]:
    """Where a ``dbkeeper pooler run`` of the test keeps its files (not created yet)."""
    folder = make_temp_dir("dbkeeper-test-cli-pooler-")
    yield folder / "pooler"
    shutil.rmtree(folder, ignore_errors=True)


def dbkeeper_command(*args: str) -> list[str]:
    """The dbkeeper CLI as a subprocess of this interpreter."""
    return [sys.executable, "-m", "dbkeeper.cli", *args]


def pooler_settings(target: ConnInfo, **overrides: Any) -> PgBouncerSettings:
    base: dict[str, Any] = {
        "databases": (DatabaseTarget(ALIAS, target.host, target.port, target.dbname),),
        "listen_port": free_port(),
        "server_tls_sslmode": "disable",
        "server_login_retry": 0.5,
        "server_connect_timeout": 2.0,
        "query_wait_timeout": 20.0,
    }
    base.update(overrides)
    return PgBouncerSettings(**base)


StartPooler = Callable[..., LocalPgBouncer]


@pytest.fixture
def start_pooler(
    database: ConnInfo, pooler_role: PoolerRole, pgbouncer_binary: str
) -> Iterator[StartPooler]:
    """Start a real pgbouncer in front of the test's database with setting overrides."""
    started: list[tuple[LocalPgBouncer, Path]] = []

    def start(**overrides: Any) -> LocalPgBouncer:
        folder = make_temp_dir("dbkeeper-test-pgbouncer-")
        pooler = LocalPgBouncer(
            folder,
            pooler_settings(database, **overrides),
            [pooler_role.entry],
            binary=pgbouncer_binary,
        )
        started.append((pooler, folder))
        pooler.start()
        return pooler

    yield start
    for pooler, folder in started:
        pooler.stop()
        shutil.rmtree(folder, ignore_errors=True)


def connect_client(
    pooler: LocalPgBouncer, role: PoolerRole, **kwargs: Any
) -> psycopg.Connection[Any]:
    """A client through the pooler; transaction pooling needs prepare_threshold=None."""
    info = pooler.client_conninfo(ALIAS, role.name, role.password)
    return psycopg.connect(info.dsn(), prepare_threshold=None, autocommit=True, **kwargs)


def children_named(parent: int, name: str) -> list[int]:
    """Process ids of the live children of ``parent`` whose command is ``name``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # exited meanwhile
        comm = text[text.index("(") + 1 : text.rindex(")")]
        state, ppid = text[text.rindex(")") + 2 :].split()[:2]
        if int(ppid) == parent and comm == name and state != "Z":
            found.append(int(stat.parent.name))
    return found


def process_gone(pid: int) -> bool:
    """No such process any more, or only its zombie waiting to be reaped."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return text[text.rindex(")") + 2 :].startswith("Z")


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a new listener could bind ``port`` on ``host``, as pgbouncer binds it."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


class BackgroundQuery:
    """Runs one query on its own thread so a test can watch it wait, then finish."""

    def __init__(self, conn: psycopg.Connection[Any], query: str) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(conn, query), daemon=True)
        self._thread.start()

    def _run(self, conn: psycopg.Connection[Any], query: str) -> None:
        try:
            self.result = conn.execute(query).fetchone()
        except BaseException as exc:
            self.error = exc

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def join(self, timeout: float = 60.0) -> Any:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"query still waiting after {timeout}s")
        if self.error is not None:
            raise self.error
        return self.result
