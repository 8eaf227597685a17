"""``dbkeeper pooler``: run a local PgBouncer in front of a database, and inspect it.

``pooler serve`` is the pooler pods' command: pgbouncer on the mounted ini, reloaded
when the mounted files change; it exits when pgbouncer dies, for the kubelet to restart
the container. ``pooler run`` renders pgbouncer.ini and userlist.txt with the same code
the operator uses in a cluster and keeps a real pgbouncer in the foreground until
interrupted, restarting it with a back-off when it dies.
Clients log in with the role's own password: PgBouncer holds only the role's SCRAM
verifier, the very one PostgreSQL stores, and reuses the client's proof to log in.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
from pathlib import Path
from types import FrameType

import psycopg
from psycopg import sql

from dbkeeper.cli.common import (
    CommandError,
    connection_from_args,
    emit,
)
from dbkeeper.conninfo import ConnInfo, redact
from dbkeeper.json_shapes.pooler import PoolerShowJson
from dbkeeper.logs import configure_logging
from dbkeeper.pooler.admin import AdminConsoleError
from dbkeeper.pooler.child_process import keep_running
from dbkeeper.pooler.listen_port import PortInUseError
from dbkeeper.pooler.local import LocalPgBouncer, admin_console_for
from dbkeeper.pooler.render import UserEntry
from dbkeeper.pooler.scram import userlist_verifier
from dbkeeper.pooler.settings import (
    SERVER_TLS_MODES,
    DatabaseTarget,
    PgBouncerSettings,
    PoolerSettingsError,
)
from dbkeeper.pooler.supervise import Supervisor


def _role_verifier(target: ConnInfo) -> str:
    """The verifier the pooler's userlist holds for the role (see ``userlist_verifier``).

    A role that may read pg_authid reuses the verifier PostgreSQL already has. Any other
    role stores the shared verifier of its password on itself: every role may do that,
    clients using the password are unaffected, and other dbkeeper poolers of the role
    hold that same verifier.
    """
    assert target.password is not None
    try:
        with psycopg.connect(target.dsn(), autocommit=True) as conn:
            role = conn.execute("SELECT current_user").fetchone()
            try:
                row = conn.execute(
                    "SELECT rolpassword FROM pg_authid WHERE rolname = current_user"
                ).fetchone()
            except psycopg.errors.InsufficientPrivilege:
                row = None
            stored = row[0] if row is not None and isinstance(row[0], str) else None
            name = str(role[0]) if role is not None else target.user
            verifier = userlist_verifier(name, target.password, stored)
            if verifier != stored:
                conn.execute(
                    sql.SQL("ALTER ROLE CURRENT_USER PASSWORD {}").format(sql.Literal(verifier))
                )
            return verifier
    except psycopg.Error as exc:
        raise CommandError(
            f"cannot prepare {target.describe()} for the pooler: {redact(str(exc)).strip()}"
        ) from None


def _settings_from_args(args: argparse.Namespace, target: ConnInfo) -> PgBouncerSettings:
    sslmode = target.sslmode if target.sslmode in SERVER_TLS_MODES else "prefer"
    try:
        return PgBouncerSettings(
            databases=(DatabaseTarget(target.dbname, target.host, target.port, target.dbname),),
            listen_port=args.listen_port,
            pool_mode=args.pool_mode,
            default_pool_size=args.default_pool_size,
            max_client_conn=args.max_client_conn,
            max_db_connections=args.max_db_connections,
            reserve_pool_size=args.reserve_pool_size,
            server_tls_sslmode=sslmode or "prefer",
            server_tls_ca_file=target.sslrootcert or "",
        )
    except PoolerSettingsError as exc:
        raise CommandError(str(exc), 2) from None


_STOPPING = (signal.SIGTERM, signal.SIGINT)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _report(line: str) -> None:
    print(f"dbkeeper: {redact(line)}", file=sys.stderr, flush=True)


def run_pooler(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM (exit 0), restarting pgbouncer whenever it dies."""
    target = connection_from_args(args)
    if not target.password:
        raise CommandError(
            "the connection string needs the role's password: clients log in through "
            "the pooler with it",
            2,
        )
    settings = _settings_from_args(args, target)
    verifier = _role_verifier(target)
    folder: Path = args.dir
    folder.mkdir(parents=True, exist_ok=True)
    pooler = LocalPgBouncer(
        folder, settings, [UserEntry(target.user, verifier)], dies_with_parent=True
    )
    try:
        pooler.start()
    except PortInUseError as exc:
        raise CommandError(
            f"{exc}, so the pooler cannot listen there: stop what holds it "
            f"(`ss -ltnp 'sport = :{exc.port}'` names it) or pass another --listen-port"
        ) from None
    except RuntimeError as exc:
        raise CommandError(str(exc)) from None
    client = dataclasses.replace(pooler.client_conninfo(target.dbname, target.user), password=None)
    print(f"pooler listening; connect with: {client.dsn()}", flush=True)
    print(f"config in {pooler.base_dir}; stop with Ctrl-C", flush=True)
    # Both stop it, as every other command, also when SIGINT came ignored from a parent
    # (a job started in the background by a shell without job control).
    previous = {sig: signal.signal(sig, _raise_interrupt) for sig in _STOPPING}
    try:
        keep_running(pooler, _report)
    except KeyboardInterrupt:
        return 0
    finally:
        pooler.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve_pooler(args: argparse.Namespace) -> int:
    """pgbouncer's own exit status once stopped by SIGTERM/SIGINT (PgBouncer 1.18 exits 1
    after SIGTERM, 0 after SIGINT), or non-zero, saying why, when it died by itself."""
    # The pod's log: reloads and pgbouncer's death, as one line each.
    configure_logging()
    try:
        supervisor = Supervisor(args.ini, poll_seconds=args.poll_interval)
        return supervisor.run()
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        raise CommandError(str(exc), 2) from None


def show_pooler(args: argparse.Namespace) -> int:
    folder: Path = args.dir
    if not (folder / "admin.json").exists():
        raise CommandError(f"no local pooler in {folder}: start one with `dbkeeper pooler run`")
    admin = admin_console_for(folder)
    try:
        pools = [p for p in admin.show_pools() if p.database != "pgbouncer"]
        stats = [s for s in admin.show_stats() if s.database != "pgbouncer"]
    except AdminConsoleError as exc:
        raise CommandError(str(exc)) from None
    data: PoolerShowJson = {
        "pools": [p.to_dict() for p in pools],
        "stats": [s.to_dict() for s in stats],
    }
    lines = ["DATABASE  USER  CL_ACTIVE  CL_WAITING  SV_ACTIVE  SV_IDLE  MAXWAIT_S"]
    lines += [
        f"{p.database}  {p.user}  {p.clients_active}  {p.clients_waiting}  "
        f"{p.servers_active}  {p.servers_idle}  {p.max_wait_seconds:g}"
        for p in pools
    ]
    lines += [
        f"{s.database}: {s.total_query_count} queries, avg query {s.avg_query_seconds:g}s, "
        f"avg wait {s.avg_wait_seconds:g}s"
        for s in stats
    ]
    emit(args, data, "\n".join(lines))
    return 0
