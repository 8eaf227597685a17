"""A real pgbouncer process in a local folder, for the demo, the CLI and the tests.

The folder holds pgbouncer.ini and userlist.txt rendered by ``dbkeeper.pooler.render``,
pgbouncer.log, ``admin.json`` (where the admin console is, no secret) and
``admin.password`` (mode 0600, the admin user's password; only its SCRAM verifier is
given to pgbouncer). Changes are applied by rewriting the files and RELOAD, or by a
restart when PgBouncer cannot take them online.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dbkeeper.conninfo import ConnInfo
from dbkeeper.local.service_user import service_user
from dbkeeper.pooler import child_process
from dbkeeper.pooler.admin import AdminConsole
from dbkeeper.pooler.changes import ChangeKind, change_kind
from dbkeeper.pooler.child_process import LAST_OUTPUT_LINES, ChildStartError, describe_exit
from dbkeeper.pooler.listen_port import ensure_port_free
from dbkeeper.pooler.render import UserEntry, render_pgbouncer_ini, render_userlist
from dbkeeper.pooler.settings import PgBouncerSettings

ADMIN_USER = "dbkeeper_admin"


def find_pgbouncer() -> str:
    """The pgbouncer binary (``DBKEEPER_PGBOUNCER`` overrides)."""
    override = os.environ.get("DBKEEPER_PGBOUNCER")
    for candidate in (override, shutil.which("pgbouncer"), "/usr/sbin/pgbouncer"):
        if candidate and Path(candidate).exists():
            return candidate
    raise RuntimeError("pgbouncer not found: install the pgbouncer package")


_VERSION_LINE = re.compile(r"PgBouncer (\d+)\.(\d+)(?:\.(\d+))?")


@functools.cache
def pgbouncer_version(binary: str) -> tuple[int, int, int]:
    """(major, minor, patch) of the pgbouncer at ``binary``, from its ``--version``."""
    try:
        result = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError as exc:
        raise RuntimeError(f"cannot run {binary} --version: {exc}") from exc
    match = _VERSION_LINE.search(result.stdout)
    if match is None:
        output = (result.stdout + result.stderr).strip()[:200]
        raise RuntimeError(f"{binary} --version reported no PgBouncer version: {output!r}")
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


def _write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically with ``text``, readable only by the service user."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o600)
    service_user().own(tmp)
    os.replace(tmp, path)


class LocalPgBouncer:
    """One pgbouncer child process serving ``settings`` from ``base_dir``.

    With ``dies_with_parent`` the kernel kills pgbouncer when this process is gone, even
    by SIGKILL: what a supervisor in the foreground wants (``pooler run``). Without it
    pgbouncer may be left running in the background, as the demo does.

    ``binary`` is the pgbouncer to run (default: ``find_pgbouncer()``); the ini is rendered
    for its version, so settings it does not know are left out.
    """

    def __init__(
        self,
        base_dir: Path,
        settings: PgBouncerSettings,
        users: Iterable[UserEntry],
        admin_user: str = ADMIN_USER,
        *,
        dies_with_parent: bool = False,
        binary: str | None = None,
    ) -> None:
        self.binary = binary or find_pgbouncer()
        self.version = pgbouncer_version(self.binary)
        self.base_dir = base_dir.resolve()
        self.admin_user = admin_user
        self.dies_with_parent = dies_with_parent
        self._users = tuple(users)
        self._admin_password = secrets.token_urlsafe(24)
        self._process: subprocess.Popen[bytes] | None = None
        self._log_start = 0  # where the current process's lines begin in pgbouncer.log
        self.settings = self._effective(settings)

    @property
    def ini_path(self) -> Path:
        return self.base_dir / "pgbouncer.ini"

    @property
    def userlist_path(self) -> Path:
        return self.base_dir / "userlist.txt"

    @property
    def log_path(self) -> Path:
        return self.base_dir / "pgbouncer.log"

    @property
    def host(self) -> str:
        addr = self.settings.listen_addr
        return "127.0.0.1" if addr in ("*", "0.0.0.0") else addr  # noqa: S104 - a wildcard

    @property
    def port(self) -> int:
        return self.settings.listen_port

    def _effective(self, settings: PgBouncerSettings) -> PgBouncerSettings:
        """``settings`` with this folder's paths and the admin user added."""
        return dataclasses.replace(
            settings,
            auth_file=str(self.userlist_path),
            # Unix sockets are left off: temporary folders can exceed the socket path limit.
            unix_socket_dir="",
            pidfile="",
            logfile="",
            admin_users=tuple(dict.fromkeys((*settings.admin_users, self.admin_user))),
            stats_users=tuple(dict.fromkeys((*settings.stats_users, self.admin_user))),
        )

    def _all_users(self) -> list[UserEntry]:
        admin = UserEntry.from_password(self.admin_user, self._admin_password)
        return [*(u for u in self._users if u.name != self.admin_user), admin]

    def _write_files(self, settings: PgBouncerSettings, users: list[UserEntry]) -> None:
        # Render both before writing either, so a rejected value leaves both files as
        # they were.
        ini = render_pgbouncer_ini(settings, version=self.version)
        userlist = render_userlist(users)
        _write_private(self.userlist_path, userlist)
        _write_private(self.ini_path, ini)

    def start(self, wait_seconds: float = 10.0) -> None:
        """Write the files and start pgbouncer; PortInUseError when its port is taken."""
        # Checked before the files are written too: a pgbouncer already running from this
        # folder reads them on its next reload.
        ensure_port_free(self.settings.listen_addr, self.port)
        self.base_dir.mkdir(parents=True, exist_ok=True)
        service_user().own(self.base_dir)
        self._write_files(self.settings, self._all_users())
        password_file = self.base_dir / "admin.password"
        password_file.write_text(self._admin_password)
        os.chmod(password_file, 0o600)
        (self.base_dir / "admin.json").write_text(
            json.dumps({"host": self.host, "port": self.port, "user": self.admin_user})
        )
        self._spawn(wait_seconds)

    def _spawn(self, wait_seconds: float) -> None:
        # Bound first, so that the probe below can only be answered by this pgbouncer.
        ensure_port_free(self.settings.listen_addr, self.port)
        preexec = service_user().preexec()  # pgbouncer refuses to run as root
        if self.dies_with_parent:
            preexec = child_process.dies_with_parent(preexec)
        log = self.log_path.open("ab")
        self._log_start = log.tell()
        try:
            self._process = subprocess.Popen(
                [self.binary, str(self.ini_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.base_dir,
                preexec_fn=preexec,
                # Its own session: a Ctrl-C meant for the caller must not reach it.
                start_new_session=True,
            )
        finally:
            log.close()
        self._wait_until_accepting(wait_seconds)

    def _wait_until_accepting(self, wait_seconds: float) -> None:
        deadline = time.monotonic() + wait_seconds
        while True:
            assert self._process is not None
            self._raise_if_exited()
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.port), timeout=0.5),
            ):
                # Whoever took the port since it was checked made our pgbouncer exit.
                self._raise_if_exited()
                return
            if time.monotonic() > deadline:
                self.stop()
                raise ChildStartError(f"pgbouncer did not accept connections: {self.log_tail()}")
            time.sleep(0.05)

    def _raise_if_exited(self) -> None:
        assert self._process is not None
        code = self._process.poll()
        if code is not None:
            raise ChildStartError(
                f"pgbouncer {describe_exit(code)}: {self.log_tail(LAST_OUTPUT_LINES)}"
            )

    def _log_lines(self) -> list[str]:
        """What the current (or last) pgbouncer process wrote to pgbouncer.log."""
        with self.log_path.open("rb") as log:
            log.seek(self._log_start)
            return log.read().decode(errors="replace").splitlines()

    def log_tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self._log_lines()[-lines:]) or "(nothing logged)"
        except OSError:
            return "(no log)"

    def last_output(self) -> str:
        """The last lines pgbouncer logged, "" when it logged none."""
        try:
            return " | ".join(self._log_lines()[-LAST_OUTPUT_LINES:])
        except OSError:
            return ""

    @property
    def pid(self) -> int | None:
        """The pgbouncer process id while it runs under this object."""
        return self._process.pid if self._process is not None else None

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def admin_console(self) -> AdminConsole:
        return AdminConsole(
            ConnInfo(
                host=self.host,
                port=self.port,
                dbname="pgbouncer",
                user=self.admin_user,
                password=self._admin_password,
            )
        )

    def client_conninfo(self, alias: str, user: str, password: str | None = None) -> ConnInfo:
        """How a client reaches ``alias`` through this pooler."""
        self.settings.database(alias)
        return ConnInfo(host=self.host, port=self.port, dbname=alias, user=user, password=password)

    def apply(self, settings: PgBouncerSettings) -> ChangeKind:
        """Serve ``settings`` from now on: RELOAD when possible, else restart the process."""
        new = self._effective(settings)
        kind = change_kind(self.settings, new)
        if kind is ChangeKind.NONE:
            return kind
        self._write_files(new, self._all_users())
        previous, self.settings = self.settings, new
        if kind is ChangeKind.RELOAD and self.is_running():
            try:
                self.admin_console().reload()
            except Exception:
                self.settings = previous
                raise
            return kind
        self.stop()
        self._spawn(10.0)
        (self.base_dir / "admin.json").write_text(
            json.dumps({"host": self.host, "port": self.port, "user": self.admin_user})
        )
        return ChangeKind.RESTART

    def apply_changes(self, changes: Mapping[str, Any]) -> ChangeKind:
        """Validate ``changes`` against the current settings, then ``apply`` them."""
        return self.apply(self.settings.updated(changes))

    def set_users(self, users: Iterable[UserEntry]) -> None:
        """Replace the userlist and RELOAD."""
        self._users = tuple(users)
        self._write_files(self.settings, self._all_users())
        if self.is_running():
            self.admin_console().reload()

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        # SIGTERM, not SIGINT: SIGINT would wait for every client to disconnect.
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def wait(self) -> int:
        """Block until the process exits (the CLI's foreground mode); its returncode."""
        assert self._process is not None
        return self._process.wait()

    def restart(self, wait_seconds: float = 10.0) -> None:
        """Start pgbouncer again on the files as they are, e.g. after it died."""
        self.stop()
        self._spawn(wait_seconds)

    def __enter__(self) -> LocalPgBouncer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def admin_console_for(base_dir: Path) -> AdminConsole:
    """The admin console of a LocalPgBouncer started in ``base_dir`` (by another process)."""
    info = json.loads((base_dir / "admin.json").read_text())
    password = (base_dir / "admin.password").read_text().strip()
    return AdminConsole(
        ConnInfo(
            host=str(info["host"]),
            port=int(info["port"]),
            dbname="pgbouncer",
            user=str(info["user"]),
            password=password,
        )
    )
