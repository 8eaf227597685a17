"""The operator holds restore drills while the owner role lacks CREATEDB.

The backups aspect of a pass, against real PostgreSQL and an in-memory store of the
objects it applies (the Kubernetes side of it runs for real in
tests/k8s/scenarios/test_backup_jobs.py): while drills are scheduled and the owner
cannot create databases, the drill CronJob is suspended and ``RestoreVerified`` names
the missing privilege; once it is granted, the next pass resumes the CronJob.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import psycopg
import pytest
from psycopg import sql

from dbkeeper.api import ConditionType, Reason, parse_spec
from dbkeeper.conninfo import ConnInfo
from dbkeeper.manifests.backup import backup_cronjob_name, verify_cronjob_name
from dbkeeper.reconcile.backup_workload import reconcile_backups
from dbkeeper.reconcile.kube_runtime import KubeRuntime
from dbkeeper.reconcile.runtime import ResourceView
from dbkeeper.reconcile.status_report import StatusReport
from dbkeeper.settings import Settings
from tests.integration.backup.conftest import RoleFactory

Manifest = dict[str, Any]
NAME = "clinic"


class ObjectStore:
    """The calls of the Kubernetes client the backups aspect makes, kept in memory."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], Manifest] = {}
        self.events: list[tuple[str, str, str]] = []

    def get(self, kind: str, namespace: str | None, name: str) -> Manifest | None:
        found = self.objects.get((kind, namespace or "", name))
        return copy.deepcopy(found) if found is not None else None

    def create(self, obj: Manifest) -> Manifest:
        metadata = obj["metadata"]
        self.objects[(obj["kind"], metadata.get("namespace", ""), metadata["name"])] = obj
        return obj

    def apply(self, obj: Manifest, hash_annotation: str) -> str:
        self.create(copy.deepcopy(obj))
        return "updated"

    def list(self, kind: str, namespace: str, selector: str) -> list[Manifest]:
        return [o for (k, ns, _), o in self.objects.items() if k == kind and ns == namespace]

    def delete(self, kind: str, namespace: str, name: str) -> None:
        self.objects.pop((kind, namespace, name), None)

    def post_event(self, ref: object, event_type: str, reason: str, message: str) -> None:
        self.events.append((event_type, reason, message))


def _spec(owner: ConnInfo) -> Any:
    return parse_spec(
        {
            "database": {
                "host": owner.host,
                "port": owner.port,
                "name": owner.dbname,
                "credentialsSecret": "clinic-owner",
            },
            "backup": {
                "schedule": "0 2 * * *",
                "verifySchedule": "0 4 * * 0",
                "destination": {"persistentVolumeClaim": {"claimName": "clinic-backups"}},
            },
        }
    )


class Cluster:
    def __init__(self, owner: ConnInfo) -> None:
        self.store = ObjectStore()
        self.settings = Settings(image="dbkeeper:test")
        self.runtime = KubeRuntime(self.store, self.settings)  # type: ignore[arg-type]
        self.owner = owner
        self.status: Mapping[str, Any] = {}

    def a_pass(self, *, reached: bool = True) -> StatusReport:
        """One pass; ``reached``: whether the pass could reach the database."""
        view = ResourceView("health", NAME, 1, {}, status=self.status, uid="uid-clinic")
        report = StatusReport(view, self.runtime)
        primary = self.owner if reached else None
        reconcile_backups(view, _spec(self.owner), self.runtime, self.settings, report, primary)
        self.status = report.status.model_dump(mode="json", exclude_none=True)
        return report

    def suspended(self, name: str) -> bool:
        cronjob = self.store.get("CronJob", "health", name)
        assert cronjob is not None
        return bool(cronjob["spec"]["suspend"])


@pytest.fixture
def owner(login_role: RoleFactory) -> ConnInfo:
    """A non-superuser role without CREATEDB, as an application's owner often is."""
    return login_role("NOCREATEDB")


def _grant_createdb(admin: ConnInfo, role: str) -> None:
    with psycopg.connect(admin.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER ROLE {} CREATEDB").format(sql.Identifier(role)))


def test_drills_are_held_while_the_owner_lacks_createdb(owner: ConnInfo) -> None:
    cluster = Cluster(owner)

    report = cluster.a_pass()

    held = report.status.condition(ConditionType.RESTORE_VERIFIED)
    assert held is not None
    assert (held.status, held.reason) == ("Unknown", Reason.MISSING_PRIVILEGE)
    assert f"role {owner.user!r} lacks CREATEDB" in held.message
    assert f"run ALTER ROLE {owner.user} CREATEDB" in held.message
    assert cluster.suspended(verify_cronjob_name(NAME))
    assert not cluster.suspended(backup_cronjob_name(NAME)), "backups go on"
    assert ("Warning", "MissingPrivilege") in [(t, r) for t, r, _ in cluster.store.events]


def test_drills_resume_at_the_pass_after_createdb_is_granted(
    owner: ConnInfo, admin: ConnInfo
) -> None:
    cluster = Cluster(owner)
    cluster.a_pass()

    _grant_createdb(admin, owner.user)
    report = cluster.a_pass()

    resumed = report.status.condition(ConditionType.RESTORE_VERIFIED)
    assert resumed is not None
    assert (resumed.status, resumed.reason) == ("Unknown", Reason.NO_DRILL_YET)
    assert not cluster.suspended(verify_cronjob_name(NAME))


def test_a_pass_that_cannot_reach_the_database_keeps_the_drills_held(owner: ConnInfo) -> None:
    cluster = Cluster(owner)
    held = cluster.a_pass().status.condition(ConditionType.RESTORE_VERIFIED)

    report = cluster.a_pass(reached=False)

    kept = report.status.condition(ConditionType.RESTORE_VERIFIED)
    assert held is not None
    assert kept is not None
    assert (kept.status, kept.reason, kept.message) == (held.status, held.reason, held.message)
    assert cluster.suspended(verify_cronjob_name(NAME))


def test_an_owner_with_createdb_gets_its_drills_scheduled(owner: ConnInfo, admin: ConnInfo) -> None:
    _grant_createdb(admin, owner.user)
    cluster = Cluster(owner)

    report = cluster.a_pass()

    condition = report.status.condition(ConditionType.RESTORE_VERIFIED)
    assert condition is not None
    assert condition.reason == Reason.NO_DRILL_YET
    assert not cluster.suspended(verify_cronjob_name(NAME))
