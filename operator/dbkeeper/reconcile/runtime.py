"""What a reconciler needs from the world, and what it hands back.

Only these protocols cross from the reconcile layer to the outside, so the operator
(Kubernetes API) and the demo (local files and the terminal) plug in the same way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from dbkeeper.api import DatabaseSchemaSpec
    from dbkeeper.conninfo import ConnInfo
    from dbkeeper.reconcile.hooks import MoveSafeguards

EventType = Literal["Normal", "Warning"]


@dataclass(frozen=True)
class ResourceView:
    """One DatabaseSchema as the reconciler sees it: identity, spec, last status."""

    namespace: str
    name: str
    generation: int
    spec: Mapping[str, Any]
    status: Mapping[str, Any] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    uid: str | None = None
    resource_version: str | None = None
    """The version this view was read at; status writes are conditional on it."""
    deleting: bool = False
    """The resource has a deletionTimestamp: only the finalizer acts on it now."""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> ResourceView:
        """The view of a resource as the API returns it (or kopf hands it over)."""
        metadata = body.get("metadata") or {}
        return cls(
            namespace=metadata.get("namespace", ""),
            name=metadata.get("name", ""),
            generation=int(metadata.get("generation") or 0),
            spec=dict(body.get("spec") or {}),
            status=dict(body.get("status") or {}),
            annotations=dict(metadata.get("annotations") or {}),
            uid=metadata.get("uid"),
            resource_version=metadata.get("resourceVersion"),
            deleting=bool(metadata.get("deletionTimestamp")),
        )


class StatusConflict(Exception):
    """The resource changed since it was read: the status write was refused (HTTP 409)."""


@dataclass(frozen=True)
class Outcome:
    """How a reconcile ended: done, try again later, or wait for the user."""

    phase: str
    retry_after: float | None = None
    """Seconds to wait before trying again (a temporary condition)."""
    permanent_error: str | None = None
    """Set when nothing will change until the resource does."""


class SecretReader(Protocol):
    """Where a reconciler's Secrets come from."""

    def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        """A Secret's keys and decoded values, or None when it does not exist."""


class Runtime(SecretReader, Protocol):
    """The outside world of a reconciler."""

    def read(self, namespace: str, name: str) -> ResourceView | None:
        """The resource as it is stored now, or None when it does not exist."""

    def refresh(self, view: ResourceView) -> ResourceView | None:
        """``view``'s resource as it is stored now, or None when it is gone."""

    def write_status(self, view: ResourceView, patch: Mapping[str, Any]) -> str | None:
        """Apply ``patch`` to the resource's status: a JSON merge patch (camelCase,
        JSON-ready; ``None`` removes a key), holding only what changed.

        When ``view.resource_version`` is set the write is conditional on it and raises
        :class:`StatusConflict` if the resource changed since. Returns the resource's new
        version, when the store has versions.
        """

    def event(self, view: ResourceView, event_type: EventType, reason: str, message: str) -> None:
        """Tell users what happened (a Kubernetes Event in a cluster)."""

    def apply(self, view: ResourceView, obj: Mapping[str, Any]) -> str:
        """Create or update an owned object; returns created, updated or unchanged."""

    def now(self) -> datetime:
        """The current time (a fixed clock in tests)."""

    def migration_hooks(
        self, view: ResourceView, spec: DatabaseSchemaSpec, conninfo: ConnInfo
    ) -> MoveSafeguards | None:
        """What to do around a move here: a backup first, pooler pauses around risky steps.

        Picklable data: moves run in a child process, which builds the hooks from it.
        """

    def abandoned(self) -> threading.Event | None:
        """Set when the work of this pass is to be given up (the operator is stopping or
        the resource is released); a running move then stops within its grace period."""


Clock = Callable[[], datetime]
