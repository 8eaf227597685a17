"""Fakes of the seams a pass talks through, for state-machine tests without I/O.

- :class:`FakeRuntime`: one stored DatabaseSchema with a resourceVersion that moves on
  every write, merge-patch status writes that are refused (409) when the version they
  carry is stale, Secrets, Events; ``before_write`` lets a test change the resource
  between a pass's read and its write, the way another writer (a user, kopf) would.
- :class:`FakeEngine`: the database as the schema aspect sees it (its revision, drift,
  whether it answers) and the moves asked of it, patched over the engine functions the
  schema aspect calls.
- :class:`FakeKube`: the API's objects for a :class:`KubeRuntime` (get, create,
  merge-patch, delete), every write recorded; ``apply`` is the real client's.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from dbkeeper.api import DatabaseSchemaSpec
from dbkeeper.conninfo import ConnInfo
from dbkeeper.kube import JsonObject, KubeClient, KubeError
from dbkeeper.migrate import (
    MigrationError,
    MigrationEvent,
    MigrationOptions,
    MigrationResult,
    MigrationSet,
    SchemaStatus,
)
from dbkeeper.migrate.status import DriftItem
from dbkeeper.reconcile import schema as schema_module
from dbkeeper.reconcile.hooks import MoveSafeguards
from dbkeeper.reconcile.runtime import EventType, ResourceView, StatusConflict
from dbkeeper.reconcile.status_patch import merge_patch

NAMESPACE = "health"
NAME = "clinic"
SECRET = "clinic-owner"


def resource(target: str = "head", generation: int = 1, **migrations: Any) -> dict[str, Any]:
    return {
        "apiVersion": "dbkeeper.dev/v1alpha1",
        "kind": "DatabaseSchema",
        "metadata": {
            "name": NAME,
            "namespace": NAMESPACE,
            "uid": "uid-1",
            "generation": generation,
            "resourceVersion": "1",
            "annotations": {},
        },
        "spec": {
            "database": {
                "host": "db.example",
                "name": "clinic",
                "credentialsSecret": SECRET,
                "sslMode": "disable",
            },
            "migrations": {"set": "healthcare", "targetRevision": target, **migrations},
        },
    }


@dataclass
class FakeRuntime:
    """A :class:`~dbkeeper.reconcile.runtime.Runtime` over one stored resource."""

    stored: dict[str, Any] | None = field(default_factory=resource)
    secrets: dict[str, dict[str, str]] = field(
        default_factory=lambda: {SECRET: {"username": "owner", "password": "pw-not-shown"}}
    )
    events: list[tuple[str, str, str]] = field(default_factory=list)
    writes: list[dict[str, Any]] = field(default_factory=list)
    conflicts: int = 0
    before_write: Callable[[], None] | None = None
    """Runs once, just before the next status write is looked at."""
    clock: datetime = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    safeguards: MoveSafeguards | None = None
    """What ``migration_hooks`` answers (None: no backup, no pooler to pause)."""

    # --- what a test does to the stored resource -----------------------------------
    def edit(self, change: Callable[[dict[str, Any]], None], *, spec: bool = False) -> None:
        """Change the stored resource as another writer would; bumps its version."""
        assert self.stored is not None
        change(self.stored)
        metadata = self.stored["metadata"]
        metadata["resourceVersion"] = str(int(metadata["resourceVersion"]) + 1)
        if spec:
            metadata["generation"] += 1

    @property
    def status(self) -> dict[str, Any]:
        assert self.stored is not None
        return dict(self.stored.get("status") or {})

    def conditions(self) -> dict[str, dict[str, Any]]:
        return {c["type"]: c for c in self.status.get("conditions", [])}

    def reasons(self) -> list[str]:
        return [reason for _, reason, _ in self.events]

    # --- the Runtime protocol ------------------------------------------------------
    def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        found = self.secrets.get(name)
        return None if found is None else dict(found)

    def read(self, namespace: str, name: str) -> ResourceView | None:
        return None if self.stored is None else ResourceView.from_body(self.stored)

    def refresh(self, view: ResourceView) -> ResourceView | None:
        return self.read(view.namespace, view.name)

    def write_status(self, view: ResourceView, patch: Mapping[str, Any]) -> str | None:
        hook, self.before_write = self.before_write, None
        if hook is not None:
            hook()
        if self.stored is None:
            raise StatusConflict("gone")
        metadata = self.stored["metadata"]
        if (
            view.resource_version is not None
            and view.resource_version != metadata["resourceVersion"]
        ):
            self.conflicts += 1
            raise StatusConflict("the object has been modified")
        self.writes.append(dict(patch))
        self.stored["status"] = merge_patch(self.stored.get("status") or {}, patch)
        metadata["resourceVersion"] = str(int(metadata["resourceVersion"]) + 1)
        return str(metadata["resourceVersion"])

    def event(self, view: ResourceView, event_type: EventType, reason: str, message: str) -> None:
        self.events.append((event_type, reason, message))

    def apply(self, view: ResourceView, obj: Mapping[str, Any]) -> str:
        raise AssertionError("the state-machine tests own no Kubernetes objects")

    def now(self) -> datetime:
        self.clock += timedelta(seconds=1)
        return self.clock

    def migration_hooks(
        self, view: ResourceView, spec: DatabaseSchemaSpec, conninfo: ConnInfo
    ) -> MoveSafeguards | None:
        return self.safeguards

    def abandoned(self) -> threading.Event | None:
        return None


@dataclass
class FakeEngine:
    """The database behind the schema aspect: its revision, and the moves asked of it."""

    migration_set: MigrationSet
    current: str | None = None
    up: bool = True
    drift: list[DriftItem] = field(default_factory=list)
    refuse: MigrationError | None = None
    """Raised by the next move instead of moving."""
    during_move: Callable[[], None] | None = None
    moves: list[MigrationOptions] = field(default_factory=list)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
        monkeypatch.setattr(schema_module, "read_status", self.read_status)
        monkeypatch.setattr(schema_module, "migrate_isolated", self.migrate)
        return self

    def read_status(self, conninfo: ConnInfo, migration_set: MigrationSet) -> SchemaStatus:
        if not self.up:
            raise MigrationError(
                "DatabaseUnreachable", f"cannot connect to {conninfo.describe()}: refused"
            )
        return SchemaStatus(
            migration_set=migration_set.name,
            current_revision=self.current,
            head_revision=migration_set.head,
            drift=list(self.drift),
        )

    def migrate(
        self,
        conninfo: ConnInfo,
        migration_set: MigrationSet,
        options: MigrationOptions,
        hooks: object = None,
        on_event: Callable[[MigrationEvent], None] | None = None,
        **_: object,
    ) -> MigrationResult:
        self.moves.append(options)
        if self.during_move is not None:
            self.during_move()
        if self.refuse is not None:
            refused, self.refuse = self.refuse, None
            raise refused
        before = self.current
        self.current = None if options.target == "base" else options.target
        if on_event is not None:
            on_event(MigrationEvent("finished", f"at {self.current}"))
        return MigrationResult(migration_set.name, before, self.current, (), timedelta(0))


class FakeKube(KubeClient):
    """The objects of the API server, by kind, namespace and name, for a
    :class:`~dbkeeper.reconcile.kube_runtime.KubeRuntime`: reads answer copies, writes
    are recorded in ``writes`` as (verb, kind, name); patches are JSON merge patches."""

    def __init__(self) -> None:
        super().__init__(api_client=cast(Any, object()))
        self.objects: dict[tuple[str, str | None, str], JsonObject] = {}
        self.writes: list[tuple[str, str, str]] = []
        self._uids = 0

    def put(self, obj: Mapping[str, Any]) -> None:
        """Store ``obj`` as someone else would have created it (not recorded)."""
        metadata = obj["metadata"]
        self.objects[(obj["kind"], metadata.get("namespace"), metadata["name"])] = copy.deepcopy(
            dict(obj)
        )

    def stored(self, kind: str, namespace: str | None, name: str) -> JsonObject | None:
        found = self.objects.get((kind, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    def get(self, kind: str, namespace: str | None, name: str) -> JsonObject | None:
        return self.stored(kind, namespace, name)

    def create(self, obj: JsonObject) -> JsonObject:
        metadata = obj["metadata"]
        key = (obj["kind"], metadata.get("namespace"), metadata["name"])
        if key in self.objects:
            raise KubeError(409, f"{obj['kind']} {metadata['name']} already exists")
        self._uids += 1
        created = copy.deepcopy(obj)
        created["metadata"]["uid"] = f"created-{self._uids}"
        self.objects[key] = created
        self.writes.append(("create", obj["kind"], metadata["name"]))
        return copy.deepcopy(created)

    def patch(
        self,
        kind: str,
        namespace: str | None,
        name: str,
        patch: JsonObject,
        subresource: str | None = None,
    ) -> JsonObject:
        key = (kind, namespace, name)
        if key not in self.objects:
            raise KubeError(404, f"{kind} {name} not found")
        self.objects[key] = merge_patch(self.objects[key], patch)
        self.writes.append(("patch", kind, name))
        return copy.deepcopy(self.objects[key])

    def delete(self, kind: str, namespace: str | None, name: str) -> None:
        if self.objects.pop((kind, namespace, name), None) is not None:
            self.writes.append(("delete", kind, name))
