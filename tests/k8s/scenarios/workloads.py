"""What the workload scenarios share: one DatabaseSchema with its Secret, reading its
conditions and owned objects, and reaching the pooler pods the test node runs."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg

from dbkeeper.conninfo import ConnInfo
from dbkeeper.manifests.pooler import pooler_name
from dbkeeper.migrate import load_set
from dbkeeper.pooler.admin import AdminConsole
from tests.k8s.harness import Cluster
from tests.k8s.scenarios.conftest import (
    API_VERSION,
    KIND,
    OwnedDatabase,
    schema_manifest,
    secret_manifest,
    status_of,
)

NAMESPACE = "workloads"
NAME = "clinic"
POOLER = pooler_name(NAME)
SECRET = "clinic-owner"
BACKUP_NOW = "dbkeeper.dev/backup-now"
BACKUP_JOB_LABELS = f"app.kubernetes.io/instance={NAME},app.kubernetes.io/name=dbkeeper"


def as_sent(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without what the API server adds, as a client would send it."""
    sent: dict[str, Any] = json.loads(json.dumps(obj))
    sent.pop("status", None)
    for key in ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields"):
        sent["metadata"].pop(key, None)
    return sent


@dataclass(frozen=True)
class Workload:
    """The resource ``NAMESPACE/NAME`` of ``database`` in ``cluster``."""

    cluster: Cluster
    database: OwnedDatabase

    def create(
        self,
        *,
        migration_set: str = "healthcare",
        migrations: dict[str, Any] | None = None,
        **spec: Any,
    ) -> None:
        """The resource with ``spec`` sections added; by default at the first revision of
        the healthcare set (a short migration: these scenarios are about workloads)."""
        self.cluster.ensure_namespace(NAMESPACE)
        if self.cluster.get("v1", "Secret", NAMESPACE, SECRET) is None:
            self.cluster.create(
                secret_manifest(NAMESPACE, SECRET, self.database.username, self.database.password)
            )
        options = dict(migrations or {})
        target = options.pop("target", None) or load_set(migration_set).ids[0]
        manifest = schema_manifest(
            NAMESPACE,
            NAME,
            self.database,
            SECRET,
            migration_set=migration_set,
            target=target,
            **options,
        )
        manifest["spec"].update(spec)
        self.cluster.create(manifest)

    def patch_spec(self, spec: dict[str, Any]) -> None:
        self.cluster.patch(API_VERSION, KIND, NAMESPACE, NAME, {"spec": spec})

    def status(self) -> dict[str, Any]:
        return status_of(self.cluster, NAMESPACE, NAME)

    def condition(self, type_: str) -> dict[str, Any] | None:
        conditions = self.status().get("conditions") or []
        return next((c for c in conditions if c["type"] == type_), None)

    def wait_condition(
        self, type_: str, status: str, reason: str, timeout: float = 60
    ) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            found = self.condition(type_)
            matches = found is not None and (found["status"], found["reason"]) == (status, reason)
            return found if matches else None

        return self.cluster.wait_for(
            check, timeout, f"{type_} {status}/{reason} (now: {self.condition(type_)})"
        )

    def get(self, api_version: str, kind: str, name: str) -> dict[str, Any] | None:
        return self.cluster.get(api_version, kind, NAMESPACE, name)

    def wait_get(self, api_version: str, kind: str, name: str) -> dict[str, Any]:
        return self.cluster.wait_for(
            lambda: self.get(api_version, kind, name), 60, f"{kind} {name} to exist"
        )

    def pods(self, selector: str) -> list[dict[str, Any]]:
        return self.cluster.list("v1", "Pod", NAMESPACE, label_selector=selector)

    # -- the pooler's pods, on the test node -----------------------------------------

    def pooler_conninfo(self, port: int, **options: Any) -> ConnInfo:
        info = self.database.conninfo
        return ConnInfo("127.0.0.1", port, info.dbname, info.user, info.password, **options)

    def pooler_client(self, port: int, **options: Any) -> psycopg.Connection[Any]:
        dsn = self.pooler_conninfo(port, **options).dsn()
        return psycopg.connect(dsn, prepare_threshold=None, autocommit=True)

    def pooler_console(self, port: int) -> AdminConsole:
        """The pgbouncer admin console, which the operator opens to the schema owner."""
        info = self.pooler_conninfo(port)
        return AdminConsole(ConnInfo(info.host, port, "pgbouncer", info.user, info.password))


@contextlib.contextmanager
def port_taken(port: int) -> Iterator[None]:
    """``port`` bound on every address but not listening: nobody else can bind it, and
    a connection to it is refused (so a probe fails instead of reaching this socket)."""
    sockets: list[socket.socket] = []
    try:
        for family, address in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):  # noqa: S104
            try:
                sock = socket.socket(family, socket.SOCK_STREAM)
                sockets.append(sock)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind((address, port))
            except OSError:
                if family == socket.AF_INET:
                    raise
                # No IPv6 here: pgbouncer cannot listen there either.
        yield
    finally:
        for sock in sockets:
            sock.close()


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def request_backup(workload: Workload, value: str) -> dict[str, Any]:
    """Ask for a backup with the backup-now annotation; the on-demand Job it made."""
    cluster = workload.cluster
    cluster.patch(
        API_VERSION, KIND, NAMESPACE, NAME, {"metadata": {"annotations": {BACKUP_NOW: value}}}
    )
    listed = cluster.wait_for(
        lambda: next(
            iter(cluster.list("batch/v1", "Job", NAMESPACE, label_selector=BACKUP_JOB_LABELS)),
            None,
        ),
        60,
        "the on-demand backup Job",
    )
    return workload.wait_get("batch/v1", "Job", listed["metadata"]["name"])
