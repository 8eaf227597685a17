"""The demo's PostgreSQL: one long-lived local cluster, its database and owner role.

The owner role plays the part the application team's Secret plays in a cluster: its
name and password are what the resource's ``credentialsSecret`` holds. Its password is
set as the shared SCRAM verifier (:func:`dbkeeper.pooler.scram.shared_verifier`), the
one any dbkeeper pooler of the role would compute, and the demo's pooler is given it.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from dbkeeper.conninfo import ConnInfo, redact
from dbkeeper.demo.folder import DemoError
from dbkeeper.local.postgres import LocalPostgres
from dbkeeper.pooler.scram import is_scram_verifier, shared_verifier


def ensure_server(pg: LocalPostgres) -> str:
    """Start the cluster (creating it if needed); says what was done: created, started, running."""
    try:
        if not pg.is_initialized():
            pg.init()
            pg.start()
            return "created"
        pg.load_port()
        if pg.is_running():
            return "running"
        pg.start()
        return "started"
    except RuntimeError as exc:
        raise DemoError(f"PostgreSQL did not start: {exc}") from None


def ensure_owner_and_database(
    admin: ConnInfo, database: str, owner: str, password: str
) -> tuple[bool, bool]:
    """Create the owner role (with CREATEDB, which restore drills need) and the database
    when missing; (role created, db created)."""
    try:
        with psycopg.connect(admin.dsn(), autocommit=True) as conn:
            role_exists = conn.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", (owner,)
            ).fetchone()
            if not role_exists:
                conn.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                        sql.Identifier(owner), sql.Literal(shared_verifier(owner, password))
                    )
                )
            # The demo's restore drill runs as the owner, as in a cluster: it creates a
            # scratch database. Also granted to a role an earlier demo made without it.
            conn.execute(sql.SQL("ALTER ROLE {} CREATEDB").format(sql.Identifier(owner)))
            database_exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
            ).fetchone()
            if not database_exists:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(database), sql.Identifier(owner)
                    )
                )
    except psycopg.Error as exc:
        raise DemoError(f"cannot prepare database {database}: {redact(str(exc)).strip()}") from None
    return not role_exists, not database_exists


def role_verifier(admin: ConnInfo, role: str) -> str:
    """The SCRAM verifier PostgreSQL stores for ``role`` (read as the superuser)."""
    with psycopg.connect(admin.dsn(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)
        ).fetchone()
    if row is None or not isinstance(row[0], str) or not is_scram_verifier(row[0]):
        raise DemoError(
            f"role {role} has no SCRAM password; run `dbkeeper demo down` and start over"
        )
    return row[0]


def count_patients(conninfo: ConnInfo, *, pooled: bool = False) -> int:
    """Patients in the database; through a pooler, without server-side prepared statements."""
    with psycopg.connect(conninfo.dsn(), prepare_threshold=None if pooled else 5) as conn:
        row = conn.execute("SELECT count(*) FROM patients").fetchone()
    return int(row[0]) if row else 0
