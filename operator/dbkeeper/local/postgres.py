"""A throwaway or long-lived local PostgreSQL cluster for the demo and the tests.

It is a real server started from the installed PostgreSQL binaries: ``initdb`` into a
folder, a free TCP port on 127.0.0.1 with SCRAM password authentication, and a Unix
socket inside the folder with trust authentication for local administration.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from dbkeeper.conninfo import ConnInfo
from dbkeeper.local.service_user import service_user

SUPERUSER = "postgres"


def find_pg_bindir() -> Path:
    """The folder of the PostgreSQL server binaries (``DBKEEPER_PG_BINDIR`` overrides)."""
    override = os.environ.get("DBKEEPER_PG_BINDIR")
    candidates = [Path(override)] if override else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for candidate in candidates:
        if (candidate / "initdb").exists():
            return candidate
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise RuntimeError("PostgreSQL server binaries not found: install the postgresql package")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_library_dir(bindir: Path) -> Path:
    """The folder of the server's loadable modules: ``pg_config --pkglibdir``, or, for a
    build without pg_config (a server-only relocatable build), the first of
    ``../lib/postgresql`` and ``../lib`` that holds pg_stat_statements."""
    pg_config = bindir / "pg_config"
    if pg_config.exists():
        return Path(
            subprocess.run(
                [str(pg_config), "--pkglibdir"], capture_output=True, text=True, check=True
            ).stdout.strip()
        )
    for candidate in (bindir.parent / "lib" / "postgresql", bindir.parent / "lib"):
        if (candidate / "pg_stat_statements.so").exists():
            return candidate
    raise RuntimeError(f"no pg_config in {bindir} and no server modules next to it")


def available_preload_libraries(bindir: Path) -> list[str]:
    """pg_stat_statements always; pgaudit too when its package is installed."""
    libs = ["pg_stat_statements"]
    if (server_library_dir(bindir) / "pgaudit.so").exists():
        libs.append("pgaudit")
    return libs


@dataclass
class LocalPostgres:
    """One PostgreSQL cluster in ``base_dir`` (data/, socket/, server.log, password)."""

    base_dir: Path
    port: int = 0
    bindir: Path | None = None

    def __post_init__(self) -> None:
        self.base_dir = self.base_dir.resolve()
        if self.bindir is None:
            self.bindir = find_pg_bindir()

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base_dir / "socket"

    @property
    def log_file(self) -> Path:
        return self.base_dir / "server.log"

    @property
    def _password_file(self) -> Path:
        return self.base_dir / "superuser.password"

    @property
    def _port_file(self) -> Path:
        return self.base_dir / "port"

    @property
    def password(self) -> str:
        return self._password_file.read_text().strip()

    def _bin(self, name: str) -> str:
        assert self.bindir is not None
        return str(self.bindir / name)

    def _run_as_service(self, args: list[str], timeout: float = 120) -> None:
        user = service_user()
        result = subprocess.run(
            args,
            capture_output=True,
            text=True,
            preexec_fn=user.preexec(),
            timeout=timeout,
            cwd=self.base_dir,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{Path(args[0]).name} failed (exit {result.returncode}): "
                f"{result.stderr.strip() or result.stdout.strip()}"
            )

    def is_initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def init(self, preload: list[str] | None = None) -> None:
        """Create the cluster: initdb with a random superuser password."""
        assert self.bindir is not None
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        self._password_file.write_text(secrets.token_urlsafe(24))
        os.chmod(self._password_file, 0o600)
        if not self.port:
            self.port = free_port()
        self._port_file.write_text(str(self.port))
        user = service_user()
        pwfile = self.base_dir / "initdb.pw"
        pwfile.write_text(self.password)
        user.own(self.base_dir)
        try:
            self._run_as_service(
                [
                    self._bin("initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    SUPERUSER,
                    "--pwfile",
                    str(pwfile),
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                    "--no-sync",
                ]
            )
        finally:
            pwfile.unlink(missing_ok=True)
        libs = preload if preload is not None else available_preload_libraries(self.bindir)
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            "shared_preload_libraries": "'" + ",".join(libs) + "'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
            "wal_level": "replica",
            "max_wal_senders": "5",
            "logging_collector": "off",
            "log_line_prefix": "'%m [%p] %u@%d '",
        }
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n# dbkeeper local cluster\n")
            for key, value in settings.items():
                conf.write(f"{key} = {value}\n")
        with (self.data_dir / "pg_hba.conf").open("a") as hba:
            hba.write("host replication all 127.0.0.1/32 scram-sha-256\n")

    def load_port(self) -> None:
        if not self.port and self._port_file.exists():
            self.port = int(self._port_file.read_text())

    def is_running(self) -> bool:
        return (self.data_dir / "postmaster.pid").exists() and self._accepts()

    def _accepts(self) -> bool:
        try:
            with psycopg.connect(self.admin_conninfo().dsn(), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def start(self, wait_seconds: float = 30) -> None:
        self.load_port()
        self._run_as_service(
            [
                self._bin("pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                str(int(wait_seconds)),
                "start",
            ],
            timeout=wait_seconds + 10,
        )
        deadline = time.monotonic() + wait_seconds
        while not self._accepts():
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not accept connections; see {self.log_file}")
            time.sleep(0.1)

    def stop(self, mode: str = "fast") -> None:
        if not (self.data_dir / "postmaster.pid").exists():
            return
        try:
            self._run_as_service(
                [self._bin("pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop"]
            )
        except RuntimeError:
            # A postmaster.pid left by a server that is gone (killed, machine restarted)
            # makes pg_ctl fail; there is nothing left to stop then.
            if self._accepts():
                raise

    def destroy(self) -> None:
        """Stop the server (immediately) and remove every file of the cluster."""
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.stop(mode="immediate")
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def admin_conninfo(self, dbname: str = "postgres") -> ConnInfo:
        """Superuser over TCP with the cluster's password."""
        return ConnInfo(
            host="127.0.0.1",
            port=self.port,
            dbname=dbname,
            user=SUPERUSER,
            password=self.password,
        )

    def create_database(self, name: str, owner: str = SUPERUSER) -> ConnInfo:
        with psycopg.connect(self.admin_conninfo().dsn(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(owner)
                )
            )
        return self.admin_conninfo(name)

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.admin_conninfo().dsn(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def create_replica(self, base_dir: Path, wait_seconds: float = 60) -> LocalPostgres:
        """A streaming replica of this (running) cluster in ``base_dir``, started.

        ``pg_basebackup -R`` copies the data folder and writes the standby settings; the
        replica gets its own port and socket folder and shares the superuser password.
        """
        replica = LocalPostgres(base_dir, port=free_port(), bindir=self.bindir)
        replica.base_dir.mkdir(parents=True, exist_ok=True)
        replica.socket_dir.mkdir(exist_ok=True)
        replica._password_file.write_text(self.password)
        os.chmod(replica._password_file, 0o600)
        replica._port_file.write_text(str(replica.port))
        user = service_user()
        user.own(replica.base_dir)
        result = subprocess.run(
            [
                self._bin("pg_basebackup"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                SUPERUSER,
                "-D",
                str(replica.data_dir),
                "-R",
                "-X",
                "stream",
                "--checkpoint=fast",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            preexec_fn=user.preexec(),
            env={**os.environ, "PGPASSWORD": self.password},
            timeout=wait_seconds,
            cwd=replica.base_dir,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"pg_basebackup failed: {result.stderr.strip()}")
        with (replica.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n# dbkeeper local replica\n")
            conf.write(f"port = {replica.port}\n")
            conf.write(f"unix_socket_directories = '{replica.socket_dir}'\n")
        replica.start(wait_seconds)
        return replica

    def promote(self, wait_seconds: float = 30) -> None:
        """Turn this standby into a primary and wait until it accepts writes."""
        self._run_as_service(
            [self._bin("pg_ctl"), "-D", str(self.data_dir), "-w", "promote"],
            timeout=wait_seconds + 10,
        )
        deadline = time.monotonic() + wait_seconds
        while True:
            with psycopg.connect(self.admin_conninfo().dsn(), autocommit=True) as conn:
                row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
            if row is not None and row[0] is False:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the replica was not promoted; see {self.log_file}")
            time.sleep(0.1)
