"""The reconcilers' runtime on one machine: Secrets, status and Events in local files.

It plays the Kubernetes API's part for ``dbkeeper demo``: the same reconcile code the
operator runs reads its Secret from ``secrets.json``, writes its status to
``status.json`` and posts its Events to the terminal and ``events.log``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

import yaml

from dbkeeper.api import DatabaseSchemaSpec
from dbkeeper.conninfo import ConnInfo, redact
from dbkeeper.demo.folder import DemoFolder
from dbkeeper.reconcile.hooks import MoveSafeguards, PoolerPause
from dbkeeper.reconcile.kube_runtime import backup_destination
from dbkeeper.reconcile.runtime import EventType, ResourceView
from dbkeeper.reconcile.status_patch import merge_patch

# Event messages are cut to this length in the terminal (the log keeps them whole), so
# each Event stays on one line of a normal terminal.
_SHOWN_LENGTH = 76

PoolerLookup = Callable[[], ConnInfo | None]
"""The admin console of the running local pooler, or None when none runs."""


def _no_pooler() -> ConnInfo | None:
    return None


class LocalRuntime:
    """A :class:`~dbkeeper.reconcile.runtime.Runtime` backed by a :class:`DemoFolder`."""

    def __init__(
        self,
        folder: DemoFolder,
        *,
        out: TextIO | None = None,
        pooler_admin: PoolerLookup = _no_pooler,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.folder = folder
        self.out = out if out is not None else sys.stdout
        self.pooler_admin = pooler_admin
        self._clock = clock

    def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        return self.folder.read_secrets().get(name)

    def read(self, namespace: str, name: str) -> ResourceView | None:
        return None  # the demo hands its resource to the reconciler itself

    def refresh(self, view: ResourceView) -> ResourceView | None:
        return dataclasses.replace(view, status=self.folder.read_status())

    def write_status(self, view: ResourceView, status: Mapping[str, Any]) -> str | None:
        # One process writes the demo's status file at a time: no versions to compare.
        self.folder.write_status(merge_patch(self.folder.read_status(), status))
        return None

    def abandoned(self) -> threading.Event | None:
        return None

    def event(self, view: ResourceView, event_type: EventType, reason: str, message: str) -> None:
        message = redact(message)
        shown = message if len(message) <= _SHOWN_LENGTH else message[: _SHOWN_LENGTH - 1] + "…"
        print(f"  event  {event_type:<7} {reason:<18} {shown}", file=self.out, flush=True)
        stamp = self.now().isoformat(timespec="seconds").replace("+00:00", "Z")
        line = f"{stamp} {view.key} {event_type} {reason} {message}\n"
        with self.folder.events_log.open("a") as log:
            log.write(line)

    def apply(self, view: ResourceView, obj: Mapping[str, Any]) -> str:
        """Write an owned object to ``objects/`` as YAML, for the curious: nothing runs it."""
        metadata = obj.get("metadata") or {}
        path = self.folder.objects / f"{obj.get('kind', 'Object')}-{metadata.get('name')}.yaml"
        text = yaml.safe_dump(json.loads(json.dumps(dict(obj), default=str)), sort_keys=False)
        if path.exists() and path.read_text() == text:
            return "unchanged"
        result = "updated" if path.exists() else "created"
        self.folder.objects.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return result

    def now(self) -> datetime:
        return self._clock() if self._clock is not None else datetime.now(UTC)

    def migration_hooks(
        self, view: ResourceView, spec: DatabaseSchemaSpec, conninfo: ConnInfo
    ) -> MoveSafeguards | None:
        destination = backup_destination(spec)
        admin = self.pooler_admin() if spec.migrations.pause_risky_revisions else None
        poolers = (PoolerPause(admin=admin, database=spec.database.name),) if admin else ()
        if destination is None and not poolers:
            return None
        return MoveSafeguards(
            database=conninfo,
            backup_destination=destination,
            backup_jobs=spec.backup.jobs if spec.backup else 2,
            poolers=poolers,
        )
