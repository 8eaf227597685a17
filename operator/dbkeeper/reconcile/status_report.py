"""The one place a pass's findings become the resource's status and Events.

A :class:`StatusReport` starts from the status the pass read, collects conditions and
fields from every aspect, and :meth:`StatusReport.commit` writes them: one merge patch
of what changed, conditional on the resourceVersion that was read. On a conflict the
resource is read again and the pass's changes are merged onto it (fields the pass
changed, conditions by type: :func:`rebase_status`), then written again, so no writer's
condition is ever lost. A Warning or Normal Event is posted when a condition changes
(status or reason), not on every pass, so a resource that waits for a Secret does not
flood its Events.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from dbkeeper.api import (
    ConditionType,
    DatabaseSchemaStatus,
    Phase,
    Reason,
    find_condition,
    set_condition,
)
from dbkeeper.reconcile.runtime import EventType, Outcome, ResourceView, Runtime, StatusConflict
from dbkeeper.reconcile.status_patch import minimal_patch, rebase_status

log = logging.getLogger(__name__)

ConditionStatus = str

# Conflicts in a row before a write gives up (each one means someone else wrote the
# resource between our read and our write; the next pass writes again anyway).
MAX_CONFLICTS = 5


class ResourceGone(Exception):
    """The resource was deleted while its status was being written."""


class StatusReport:
    def __init__(self, view: ResourceView, runtime: Runtime) -> None:
        self.view = view
        self.runtime = runtime
        self.before = DatabaseSchemaStatus.from_raw(view.status)
        self.status = self.before
        self.now = runtime.now()

    def condition(
        self,
        type_: ConditionType,
        status: ConditionStatus,
        reason: Reason,
        message: str,
        *,
        event: EventType | None = None,
        event_reason: str | None = None,
    ) -> bool:
        """Set one condition; post an Event of ``event`` type if it changed. True if changed."""
        previous = find_condition(self.status.conditions, type_)
        changed = previous is None or previous.status != status or previous.reason != reason
        conditions = set_condition(
            self.status.conditions,
            type_,
            "True" if status == "True" else "False" if status == "False" else "Unknown",
            reason,
            message,
            self.now,
            self.view.generation,
        )
        self.status = self.status.model_copy(update={"conditions": conditions})
        if changed and event is not None:
            self.event(event, event_reason or reason.value, message)
        return changed

    def event(self, event_type: EventType, reason: str, message: str) -> None:
        self.runtime.event(self.view, event_type, reason, message)

    def drop_condition(self, type_: ConditionType) -> None:
        """Remove the condition of ``type_``: the aspect it described no longer exists."""
        kept = [c for c in self.status.conditions if c.type != type_]
        self.status = self.status.model_copy(update={"conditions": kept})

    def update(self, **fields: Any) -> None:
        self.status = self.status.model_copy(update=fields)

    def settle(self, phase: Phase, message: str, reason: Reason | None = None) -> None:
        """Record the phase, Ready and a summary for people (written by :meth:`commit`);
        ``reason`` says why not Ready when the first failing condition does not."""
        ready = phase == Phase.READY
        self.condition(
            ConditionType.READY,
            "True" if ready else "False",
            Reason.RECONCILED if ready else reason or self._ready_reason(phase),
            message,
        )
        self.update(phase=phase, message=message, observed_generation=self.view.generation)

    def write(self, phase: Phase, message: str) -> None:
        """Settle the phase and write everything collected now (a move announcing itself)."""
        self.settle(phase, message)
        self.commit()

    def commit(self) -> None:
        """Write what this report changed, conflict-safe; nothing when nothing changed.

        Raises :class:`ResourceGone` when the resource was deleted meanwhile, and
        :class:`StatusConflict` after :data:`MAX_CONFLICTS` conflicts in a row.
        """
        view, base = self.view, self.before
        for _ in range(MAX_CONFLICTS):
            target = rebase_status(self.before, self.status, base)
            patch = minimal_patch(base.to_patch(), target.to_patch())
            if not patch:
                self._written(view, target)
                return
            try:
                version = self.runtime.write_status(view, patch)
            except StatusConflict:
                log.debug("status of %s changed since it was read; merging again", view.key)
                fresh = self.runtime.refresh(view)
                if fresh is None:
                    raise ResourceGone(view.key) from None
                view, base = fresh, DatabaseSchemaStatus.from_raw(fresh.status)
                continue
            self._written(dataclasses.replace(view, resource_version=version), target)
            return
        raise StatusConflict(f"status of {view.key} kept changing; not written")

    def _written(self, view: ResourceView, status: DatabaseSchemaStatus) -> None:
        self.view = dataclasses.replace(view, status=status.to_patch())
        self.before = self.status = status

    def _ready_reason(self, phase: Phase) -> Reason:
        # The first False (else Unknown) condition other than Ready explains why not.
        for wanted in ("False", "Unknown"):
            for condition in self.status.conditions:
                if condition.type != ConditionType.READY and condition.status == wanted:
                    return condition.reason
        return Reason.MIGRATING if phase == Phase.MIGRATING else Reason.MIGRATION_PENDING

    def outcome(
        self,
        phase: Phase,
        message: str,
        *,
        retry_after: float | None = None,
        permanent: bool = False,
        reason: Reason | None = None,
    ) -> Outcome:
        """Settle the phase and say how the pass ended; :meth:`commit` writes it."""
        self.settle(phase, message, reason)
        return Outcome(
            phase=phase.value,
            retry_after=retry_after,
            permanent_error=message if permanent else None,
        )
