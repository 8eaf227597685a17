"""Configuring one pooler never locks another pooler of the same role out of PostgreSQL.

PgBouncer logs in to the server with the SCRAM verifier its userlist holds, so every
pooler of a role must hold the verifier the server stores. The operator's pooler aspect
runs here for real against PostgreSQL and real pgbouncers; only the Kubernetes API is an
in-memory stand-in that keeps the objects it is given and the Events posted.
"""

from __future__ import annotations

import dataclasses
import shutil
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from dbkeeper.api import ConditionType, Reason, parse_spec
from dbkeeper.conninfo import ConnInfo
from dbkeeper.kube import JsonObject, KubeClient, ObjectRef
from dbkeeper.local.postgres import LocalPostgres, free_port
from dbkeeper.manifests import HASH_ANNOTATION
from dbkeeper.manifests.pooler import pooler_name
from dbkeeper.pooler.local import LocalPgBouncer
from dbkeeper.pooler.render import UserEntry
from dbkeeper.pooler.scram import scram_verifier, shared_verifier
from dbkeeper.reconcile.kube_runtime import KubeRuntime
from dbkeeper.reconcile.pooler_workload import ROLE_VERIFIER_SET, reconcile_pooler
from dbkeeper.reconcile.runtime import ResourceView
from dbkeeper.reconcile.status_report import StatusReport
from dbkeeper.settings import Settings
from tests.integration.pooler.binaries import on_both_pgbouncers, pgbouncer_binary
from tests.integration.pooler.conftest import (
    ALIAS,
    dbkeeper_command,
    make_temp_dir,
    pooler_settings,
)
from tests.secret_watch import watched

__all__ = ["pgbouncer_binary"]  # a fixture: the two-pooler cases run on both pgbouncers

NAMESPACE = "health"
EVENT = ROLE_VERIFIER_SET


class MemoryKube(KubeClient):
    """The Kubernetes API as the pooler aspect uses it: objects by kind and name, Events."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], JsonObject] = {}
        self.events: list[tuple[str, str, str]] = []

    def get(self, kind: str, namespace: str | None, name: str) -> JsonObject | None:
        return self.objects.get((kind, namespace or "", name))

    def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        found = self.get("Secret", namespace, name)
        return None if found is None else dict(found.get("stringData") or {})

    def apply(self, obj: JsonObject, hash_annotation: str) -> str:
        metadata = obj["metadata"]
        key = (obj["kind"], metadata.get("namespace") or "", metadata["name"])
        created = key not in self.objects
        self.objects[key] = obj
        return "created" if created else "updated"

    def post_event(self, ref: ObjectRef, event_type: str, reason: str, message: str) -> None:
        self.events.append((ref.name, reason, message))

    def reasons(self, reason: str) -> list[str]:
        return [message for _, found, message in self.events if found == reason]


@dataclasses.dataclass
class Owner:
    """The owner role of the test's database, as the credentials Secret names it."""

    name: str
    password: str
    database: ConnInfo

    @property
    def login(self) -> ConnInfo:
        return dataclasses.replace(self.database, user=self.name, password=self.password)


class Operator:
    """dbkeeper's pooler aspect for resources named freely, over one MemoryKube."""

    def __init__(self, owner: Owner) -> None:
        self.owner = owner
        self.kube = MemoryKube()
        self.runtime = KubeRuntime(self.kube, Settings(image="dbkeeper:test"))

    def configure(self, resource: str, **pooler: Any) -> list[UserEntry]:
        """One pass of the pooler aspect for ``resource``; returns its Secret's userlist."""
        spec = parse_spec(
            {
                "database": {
                    "host": self.owner.database.host,
                    "port": self.owner.database.port,
                    "name": self.owner.database.dbname,
                    "credentialsSecret": "owner",
                },
                "pooler": {"enabled": True, **pooler},
            }
        )
        view = ResourceView(NAMESPACE, resource, 1, {}, uid=f"uid-{resource}")
        report = StatusReport(view, self.runtime)
        settings = self.runtime.settings
        # True: the objects were applied (a verifier that could not be stored says False).
        assert reconcile_pooler(view, spec, self.runtime, settings, report, self.owner.login)
        condition = report.status.condition(ConditionType.POOLER_READY)
        assert condition is not None
        assert condition.reason != Reason.POOLER_CONFIG_INVALID, condition.message
        return self.userlist(resource)

    def userlist(self, resource: str) -> list[UserEntry]:
        secret = self.kube.get("Secret", NAMESPACE, pooler_name(resource))
        assert secret is not None
        entries = []
        for line in secret["stringData"]["userlist.txt"].splitlines():
            name, _, verifier = line.strip('"').partition('" "')
            entries.append(UserEntry(name, verifier))
        return entries

    def secret_hash(self, resource: str) -> str:
        secret = self.kube.get("Secret", NAMESPACE, pooler_name(resource))
        assert secret is not None
        return str(secret["metadata"]["annotations"][HASH_ANNOTATION])


def _stored(cluster: LocalPostgres, role: str) -> str:
    with psycopg.connect(cluster.admin_conninfo().dsn()) as conn:
        row = conn.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)
        ).fetchone()
    assert row is not None
    assert isinstance(row[0], str)
    return row[0]


def _admin(cluster: LocalPostgres, statement: sql.Composed, dbname: str = "postgres") -> None:
    with psycopg.connect(cluster.admin_conninfo(dbname).dsn(), autocommit=True) as conn:
        conn.execute(statement)


MakeOwner = Callable[..., Owner]


@pytest.fixture
def make_owner(pg_cluster: LocalPostgres, database: ConnInfo) -> Iterator[MakeOwner]:
    """An owner role whose password was set with a random salt, as ``psql \\password`` or
    a CREATE ROLE by hand sets it; ``reads_verifiers`` lets it read pg_authid."""
    made: list[str] = []

    def make(*, reads_verifiers: bool) -> Owner:
        name = f"owner_{uuid.uuid4().hex[:8]}"
        password = watched(f"pw-owner-{uuid.uuid4().hex}")
        ident = sql.Identifier(name)
        _admin(
            pg_cluster,
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                ident, sql.Literal(scram_verifier(password))
            ),
        )
        made.append(name)
        _admin(
            pg_cluster,
            sql.SQL("GRANT ALL ON DATABASE {} TO {}").format(
                sql.Identifier(database.dbname), ident
            ),
        )
        if reads_verifiers:
            # A catalog's privileges live in each database: grant where the owner works.
            grant = sql.SQL("GRANT SELECT ON pg_catalog.pg_authid TO {}").format(ident)
            _admin(pg_cluster, grant, database.dbname)
        return Owner(name, password, database)

    yield make
    for name in made:
        ident = sql.Identifier(name)
        revoke = sql.SQL("REVOKE ALL ON pg_catalog.pg_authid FROM {}").format(ident)
        _admin(pg_cluster, revoke, database.dbname)
        _admin(
            pg_cluster,
            sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(
                sql.Identifier(database.dbname), ident
            ),
        )
        _admin(pg_cluster, sql.SQL("DROP ROLE {}").format(ident))


StartPgBouncer = Callable[[list[UserEntry]], LocalPgBouncer]


@pytest.fixture
def start_pgbouncer(database: ConnInfo, pgbouncer_binary: str) -> Iterator[StartPgBouncer]:
    """Real pgbouncers in front of the test's database, each holding the given userlist."""
    started: list[tuple[LocalPgBouncer, Path]] = []

    def start(users: list[UserEntry]) -> LocalPgBouncer:
        folder = make_temp_dir("dbkeeper-test-verifier-pgbouncer-")
        pooler = LocalPgBouncer(folder, pooler_settings(database), users, binary=pgbouncer_binary)
        started.append((pooler, folder))
        pooler.start()
        return pooler

    yield start
    for pooler, folder in started:
        pooler.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _logs_in(pooler: LocalPgBouncer, owner: Owner) -> str:
    """The owner's query through ``pooler``: pgbouncer must log in to the server for it."""
    info = pooler.client_conninfo(ALIAS, owner.name, owner.password)
    with psycopg.connect(info.dsn(), prepare_threshold=None, autocommit=True) as conn:
        row = conn.execute("SELECT current_user").fetchone()
    assert row is not None
    return str(row[0])


@on_both_pgbouncers
def test_two_resources_of_one_role_both_keep_logging_in_when_verifiers_are_unreadable(
    make_owner: MakeOwner, start_pgbouncer: StartPgBouncer, pg_cluster: LocalPostgres
) -> None:
    owner = make_owner(reads_verifiers=False)
    operator = Operator(owner)
    first = operator.configure("clinic")
    second = operator.configure("clinic-reports")  # stores its verifier after the first
    # Each pgbouncer opens its first server connection only now, after both were set up.
    for users in (first, second):
        assert _logs_in(start_pgbouncer(users), owner) == owner.name
    assert first == second, "every resource computes the same verifier for the role"
    assert _stored(pg_cluster, owner.name) == shared_verifier(owner.name, owner.password)


@on_both_pgbouncers
def test_a_readable_verifier_is_reused_and_never_rewritten(
    make_owner: MakeOwner, start_pgbouncer: StartPgBouncer, pg_cluster: LocalPostgres
) -> None:
    owner = make_owner(reads_verifiers=True)
    before = _stored(pg_cluster, owner.name)
    sidecar = start_pgbouncer([UserEntry(owner.name, before)])  # holds what the server has
    operator = Operator(owner)
    users = operator.configure("clinic")
    assert _stored(pg_cluster, owner.name) == before, "no ALTER ROLE: the verifier is unchanged"
    assert users == [UserEntry(owner.name, before)]
    assert operator.kube.reasons(EVENT) == []
    assert _logs_in(start_pgbouncer(users), owner) == owner.name
    assert _logs_in(sidecar, owner) == owner.name


def test_a_verifier_change_is_announced_once_and_never_says_the_secret(
    make_owner: MakeOwner, pg_cluster: LocalPostgres
) -> None:
    owner = make_owner(reads_verifiers=False)
    operator = Operator(owner)
    operator.configure("clinic")
    (message,) = operator.kube.reasons(EVENT)
    assert owner.name in message
    stored = _stored(pg_cluster, owner.name)
    assert owner.password not in message
    assert stored not in message
    assert stored.split("$")[2].split(":")[0] not in message  # nor the StoredKey

    operator.configure("clinic")
    operator.configure("clinic", defaultPoolSize=7)  # a config change, same userlist
    assert len(operator.kube.reasons(EVENT)) == 1, "set once, announced once"

    # The password really changes (the Secret and the role, as the roles aspect does).
    owner.password = watched(f"pw-owner-{uuid.uuid4().hex}")
    _admin(
        pg_cluster,
        sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            sql.Identifier(owner.name), sql.Literal(scram_verifier(owner.password))
        ),
    )
    hash_before = operator.secret_hash("clinic")
    operator.configure("clinic")
    assert operator.secret_hash("clinic") != hash_before
    assert len(operator.kube.reasons(EVENT)) == 2
    assert _stored(pg_cluster, owner.name) == shared_verifier(owner.name, owner.password)


def test_a_local_pooler_run_beside_the_operators_pooler_locks_neither_out(
    make_owner: MakeOwner, start_pgbouncer: StartPgBouncer, pg_cluster: LocalPostgres
) -> None:
    owner = make_owner(reads_verifiers=False)
    users = Operator(owner).configure("clinic")
    in_cluster = start_pgbouncer(users)
    folder = make_temp_dir("dbkeeper-test-verifier-cli-")
    port = free_port()
    process = subprocess.Popen(
        dbkeeper_command(
            "pooler", "run", "--listen-port", str(port), "--dir", str(folder / "pooler")
        ),
        env={"DBKEEPER_DSN": owner.login.dsn(), "PATH": "/usr/bin:/bin:/usr/sbin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        assert f"port={port}" in first_line, first_line + (
            process.stderr.read() if process.stderr else ""
        )
        client_dsn = first_line.split("connect with: ", 1)[1].strip()
        with psycopg.connect(client_dsn, password=owner.password, prepare_threshold=None) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (owner.name,)
        # The operator's pooler logs in to the server for the first time only now.
        assert _logs_in(in_cluster, owner) == owner.name
        assert _stored(pg_cluster, owner.name) == users[0].verifier
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
