"""The demo's PgBouncer: the resource's pooler settings, served by a local process.

The process outlives ``dbkeeper demo up`` (like the Deployment would in a cluster), so
its pid is kept in ``pooler/pgbouncer.pid``; a pid is only trusted while that process
still runs pgbouncer with this folder's ini file, so a recycled pid is never signalled.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import time
from pathlib import Path

from dbkeeper.api import DatabaseSchemaSpec
from dbkeeper.conninfo import ConnInfo
from dbkeeper.pooler.local import LocalPgBouncer, admin_console_for, find_pgbouncer
from dbkeeper.pooler.render import UserEntry
from dbkeeper.pooler.settings import PgBouncerSettings, PoolerSettingsError
from dbkeeper.reconcile.pooler_input import pgbouncer_settings

PID_FILE = "pgbouncer.pid"
DEFAULT_PORT = 6432


def pooler_settings(spec: DatabaseSchemaSpec, host: str, port: int) -> PgBouncerSettings:
    """The settings the operator would give the pooler, for the local server.

    The same mapping as in a cluster; only TLS to the server is off, because the local
    PostgreSQL has no certificate.
    """
    return dataclasses.replace(
        pgbouncer_settings(spec, host, port), server_tls_sslmode="disable", server_tls_ca_file=""
    )


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As pgbouncer binds: connections of an earlier run still in TIME_WAIT do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def choose_port(preferred: int = DEFAULT_PORT) -> int:
    """``preferred`` when free, else the next free one above it."""
    for port in range(preferred, preferred + 100):
        if port_is_free(port):
            return port
    raise RuntimeError(f"no free port in {preferred}..{preferred + 99} for the pooler")


def _pid_file(folder: Path) -> Path:
    return folder / PID_FILE


def _is_our_pgbouncer(pid: int, folder: Path) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return str(folder.resolve() / "pgbouncer.ini").encode() in argv


def running_pid(folder: Path) -> int | None:
    """The pid of this folder's pgbouncer, when it runs."""
    try:
        pid = int(_pid_file(folder).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _is_our_pgbouncer(pid, folder) else None


def _find_started_pid(folder: Path) -> int | None:
    ini = str(folder.resolve() / "pgbouncer.ini").encode()
    binary = find_pgbouncer().encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if ini in argv and argv[0] == binary:
                return int(entry.name)
    return None


def start_pooler(folder: Path, settings: PgBouncerSettings, users: list[UserEntry]) -> int:
    """Start pgbouncer in the background from ``folder``; returns its pid."""
    pooler = LocalPgBouncer(folder, settings, users)
    try:
        pooler.start()
    except (RuntimeError, PoolerSettingsError) as exc:
        raise RuntimeError(f"the pooler did not start: {exc}") from None
    pid = _find_started_pid(folder)
    if pid is None:
        raise RuntimeError(f"the pooler started but its process was not found: {pooler.log_tail()}")
    _pid_file(folder).write_text(f"{pid}\n")
    return pid


def admin_conninfo(folder: Path) -> ConnInfo | None:
    """The admin console of the running pooler (for PAUSE/RESUME), or None."""
    if running_pid(folder) is None:
        return None
    return admin_console_for(folder).conninfo


def stop_pooler(folder: Path, wait_seconds: float = 10.0) -> bool:
    """Stop this folder's pgbouncer; True when one was running."""
    pid = running_pid(folder)
    if pid is None:
        return False
    # SIGTERM, not SIGINT: SIGINT would wait for every client to disconnect.
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait_seconds
    while _is_our_pgbouncer(pid, folder) and not _is_zombie(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    return True


def _is_zombie(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return True
    return fields[0] == "Z"
