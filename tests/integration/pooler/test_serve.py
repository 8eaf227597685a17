"""``dbkeeper pooler serve``: the pods' pgbouncer, reloaded when its mounted files change.

The configuration folders are laid out the way the kubelet mounts a ConfigMap or a
Secret (files are symlinks through ``..data``, an update swaps that symlink), so the
tests change the files exactly as a cluster would.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dbkeeper.conninfo import ConnInfo
from dbkeeper.local.postgres import LocalPostgres
from dbkeeper.local.service_user import service_user
from dbkeeper.pooler.admin import AdminConsole
from dbkeeper.pooler.local import find_pgbouncer, pgbouncer_version
from dbkeeper.pooler.render import UserEntry, render_pgbouncer_ini, render_userlist
from dbkeeper.pooler.settings import PgBouncerSettings
from tests.integration.pooler.binaries import on_both_pgbouncers
from tests.integration.pooler.conftest import (
    ALIAS,
    PoolerRole,
    children_named,
    create_role,
    make_temp_dir,
    pooler_settings,
    port_free,
    process_gone,
)
from tests.waiting import wait_for

ADMIN = "serve_admin"
POLL_SECONDS = 0.5


class KubeletMount:
    """A folder updated like a mounted ConfigMap: files reached through ``..data``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(mode=0o755)
        self._versions = itertools.count()

    def publish(self, files: dict[str, str]) -> None:
        version = self.root / f"..v{next(self._versions)}"
        version.mkdir(mode=0o755)
        for name, text in files.items():
            (version / name).write_text(text)
            (version / name).chmod(0o644)
        swap = self.root / "..data_tmp"
        swap.symlink_to(version.name)
        os.replace(swap, self.root / "..data")
        for name in files:
            link = self.root / name
            if not link.is_symlink():
                link.symlink_to(f"..data/{name}")

    def path(self, name: str) -> Path:
        return self.root / name


class Served:
    """A running ``dbkeeper pooler serve`` with its mounts and admin console."""

    def __init__(
        self,
        folder: Path,
        settings: PgBouncerSettings,
        users: list[UserEntry],
        pgbouncer: str | None = None,
    ) -> None:
        self.config = KubeletMount(folder / "config")
        self.auth = KubeletMount(folder / "auth")
        self.admin_password = secrets.token_urlsafe(18)
        self.users = users
        self.settings = settings
        self.pgbouncers: set[int] = set()
        self.publish()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dbkeeper.cli",
                "pooler",
                "serve",
                str(self.config.path("pgbouncer.ini")),
                "--poll-interval",
                str(POLL_SECONDS),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "DBKEEPER_PGBOUNCER": pgbouncer} if pgbouncer else None,
        )
        wait_for(self.accepting, 60, "pgbouncer to accept connections")

    def publish(self) -> None:
        effective = self.settings.updated(
            {"auth_file": str(self.auth.path("userlist.txt")), "admin_users": (ADMIN,)}
        )
        admin = UserEntry.from_password(ADMIN, self.admin_password)
        self.auth.publish({"userlist.txt": render_userlist([*self.users, admin])})
        self.config.publish({"pgbouncer.ini": render_pgbouncer_ini(effective)})

    def accepting(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"serve exited early: {self.stderr()}")
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", self.settings.listen_port), 0.5).close()
            return True
        return False

    def stderr(self) -> str:
        if self.process.poll() is None or self.process.stderr is None:
            return ""
        return self.process.stderr.read().decode(errors="replace")[-2000:]

    def admin(self) -> AdminConsole:
        return AdminConsole(
            ConnInfo(
                "127.0.0.1", self.settings.listen_port, "pgbouncer", ADMIN, self.admin_password
            )
        )

    def client(self, role: PoolerRole) -> psycopg.Connection[Any]:
        info = ConnInfo("127.0.0.1", self.settings.listen_port, ALIAS, role.name, role.password)
        return psycopg.connect(info.dsn(), prepare_threshold=None, autocommit=True)

    def pgbouncer_pid(self) -> int:
        [pid] = children_named(self.process.pid, "pgbouncer")
        self.pgbouncers.add(pid)
        return pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        # A pgbouncer that outlived serve must not outlive the test too.
        for pid in self.pgbouncers:
            if not process_gone(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


@pytest.fixture
def serve(database: ConnInfo, pooler_role: PoolerRole, pgbouncer_binary: str) -> Iterator[Any]:
    started: list[tuple[Served, Path]] = []

    def start(**overrides: Any) -> Served:
        folder = make_temp_dir("dbkeeper-test-serve-")
        served = Served(
            folder, pooler_settings(database, **overrides), [pooler_role.entry], pgbouncer_binary
        )
        started.append((served, folder))
        return served

    yield start
    for served, folder in started:
        served.stop()
        shutil.rmtree(folder, ignore_errors=True)


@on_both_pgbouncers
def test_pool_size_change_in_the_mounted_ini_is_reloaded_while_a_client_keeps_working(
    serve: Any, pooler_role: PoolerRole
) -> None:
    served: Served = serve(default_pool_size=3)
    assert served.admin().show_config()["default_pool_size"].value == "3"
    with served.client(pooler_role) as client:
        assert client.execute("SELECT 1").fetchone() == (1,)
        served.settings = served.settings.updated({"default_pool_size": 9})
        served.publish()
        wait_for(
            lambda: served.admin().show_config()["default_pool_size"].value == "9",
            30,
            "SHOW CONFIG to report the new default_pool_size",
        )
        assert client.execute("SELECT 2").fetchone() == (2,)
        assert not client.closed


@on_both_pgbouncers
def test_a_mounted_ini_with_settings_newer_than_the_pgbouncer_still_serves_and_reloads(
    serve: Any, pooler_role: PoolerRole, pgbouncer_binary: str
) -> None:
    served: Served = serve(max_prepared_statements=150)
    mounted = served.config.path("pgbouncer.ini")
    assert "\nmax_prepared_statements = 150\n" in mounted.read_text()
    config = served.admin().show_config()
    if pgbouncer_version(pgbouncer_binary) >= (1, 21):
        assert config["max_prepared_statements"].value == "150"
    else:
        assert "max_prepared_statements" not in config
    served.settings = served.settings.updated({"default_pool_size": 4})
    served.publish()
    wait_for(
        lambda: served.admin().show_config()["default_pool_size"].value == "4",
        30,
        "SHOW CONFIG to report the new default_pool_size",
    )
    with served.client(pooler_role) as client:
        assert client.execute("SELECT 1").fetchone() == (1,)


def test_a_user_added_to_the_mounted_userlist_can_log_in(
    serve: Any, pg_cluster: LocalPostgres, pooler_role: PoolerRole
) -> None:
    served: Served = serve()
    newcomer = create_role(pg_cluster, f"serve_new_{uuid.uuid4().hex[:8]}", secrets.token_hex(12))
    with pytest.raises(psycopg.OperationalError):
        served.client(newcomer).close()
    served.users = [*served.users, newcomer.entry]
    served.publish()

    def newcomer_logs_in() -> bool:
        try:
            with served.client(newcomer) as conn:
                return conn.execute("SELECT current_user").fetchone() == (newcomer.name,)
        except psycopg.OperationalError:
            return False

    wait_for(newcomer_logs_in, 60, "the new user to log in through the pooler")


def test_sigterm_is_forwarded_and_pgbouncer_stops(serve: Any) -> None:
    served: Served = serve()
    served.process.send_signal(signal.SIGTERM)
    served.process.wait(10)
    assert "got SIGTERM" in served.stderr()
    assert not _port_open(served.settings.listen_port)


def test_serve_exits_non_zero_saying_how_pgbouncer_died(serve: Any) -> None:
    served: Served = serve()
    os.kill(served.pgbouncer_pid(), signal.SIGKILL)

    code = served.process.wait(30)

    assert code == 128 + signal.SIGKILL
    died = [line for line in served.stderr().splitlines() if "pgbouncer died" in line]
    assert len(died) == 1
    assert "killed by signal 9 (SIGKILL)" in died[0]


def test_pgbouncer_does_not_outlive_serve_killed_with_sigkill(serve: Any) -> None:
    served: Served = serve()
    pgbouncer = served.pgbouncer_pid()

    served.process.kill()
    served.process.wait(30)

    wait_for(lambda: process_gone(pgbouncer), 30, "pgbouncer to go with serve")
    wait_for(lambda: port_free(served.settings.listen_port), 30, "the port to be free")


def test_exit_code_is_pgbouncers_own(pooler_role: PoolerRole) -> None:
    folder = make_temp_dir("dbkeeper-test-serve-bad-")
    try:
        ini = folder / "pgbouncer.ini"
        # A database entry pointing at an auth file that does not exist: pgbouncer refuses
        # to start.
        ini.write_text(
            "[databases]\napp = host=127.0.0.1 port=1\n[pgbouncer]\nlisten_port = 1\n"
            f"auth_file = {folder}/missing.txt\nauth_type = no-such-type\n"
        )
        ini.chmod(0o644)
        direct = subprocess.run(
            [find_pgbouncer(), str(ini)],
            capture_output=True,
            preexec_fn=service_user().preexec(),
            timeout=60,
            check=False,
        ).returncode
        served = subprocess.run(
            [sys.executable, "-m", "dbkeeper.cli", "pooler", "serve", str(ini)],
            capture_output=True,
            timeout=60,
            check=False,
        ).returncode
        assert direct != 0
        assert served == direct
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
    except OSError:
        return False
    return True
