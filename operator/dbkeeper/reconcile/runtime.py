"""What a reconciler needs from the world, and what it hands back.

Only these protocols cross from the reconcile layer to the outside, so the operator
(Kubernetes API) and the demo (local files and the terminal) plug in the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from dbkeeper.api import DatabaseSchemaSpec
    from dbkeeper.conninfo import ConnInfo
    from dbkeeper.migrate import HooksFactory

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

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Outcome:
    """How a reconcile ended: done, try again later, or wait for the user."""

    phase: str
    retry_after: float | None = None
    """Seconds to wait before trying again (a temporary condition)."""
    permanent_error: str | None = None
    """Set when nothing will change until the resource does."""


class Runtime(Protocol):
    """The outside world of a reconciler."""

    def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        """A Secret's keys and decoded values, or None when it does not exist."""

    def write_status(self, view: ResourceView, patch: Mapping[str, Any]) -> None:
        """Apply ``patch`` to the resource's status: a JSON merge patch (camelCase,
        JSON-ready; ``None`` removes a key), holding only what changed."""

    def event(self, view: ResourceView, event_type: EventType, reason: str, message: str) -> None:
        """Tell users what happened (a Kubernetes Event in a cluster)."""

    def apply(self, view: ResourceView, obj: Mapping[str, Any]) -> str:
        """Create or update an owned object; returns created, updated or unchanged."""

    def now(self) -> datetime:
        """The current time (a fixed clock in tests)."""

    def migration_hooks(
        self, view: ResourceView, spec: DatabaseSchemaSpec, conninfo: ConnInfo
    ) -> HooksFactory | None:
        """What to do around a move here: a backup first, pooler pauses around risky steps.

        A picklable factory: moves run in a child process, which builds the hooks.
        """


Clock = Callable[[], datetime]
