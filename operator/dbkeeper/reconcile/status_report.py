"""The one place a reconciler's findings become the resource's status and Events.

A :class:`StatusReport` starts from the status last written, collects conditions and
fields, and writes them in one patch: with the phase and Ready (:meth:`StatusReport.write`)
or, for the pooler and backups, leaving those as they are
(:meth:`StatusReport.write_aspects`). A Warning or Normal Event is posted when a
condition changes (status or reason), not on every pass, so a resource that waits for a
Secret does not flood its Events.
"""

from __future__ import annotations

from typing import Any

from dbkeeper.api import (
    ConditionType,
    DatabaseSchemaStatus,
    Phase,
    Reason,
    find_condition,
    set_condition,
)
from dbkeeper.reconcile.runtime import EventType, Outcome, ResourceView, Runtime
from dbkeeper.reconcile.status_patch import minimal_patch

ConditionStatus = str


class StatusReport:
    def __init__(self, view: ResourceView, runtime: Runtime) -> None:
        self.view = view
        self.runtime = runtime
        self.before = DatabaseSchemaStatus.from_raw(view.status)
        self.status = self.before
        self.now = runtime.now()

    @property
    def conditions_before(self) -> DatabaseSchemaStatus:
        return self.before

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

    def write(self, phase: Phase, message: str) -> None:
        """Write everything collected, with the phase and a summary for people."""
        ready = phase == Phase.READY
        self.condition(
            ConditionType.READY,
            "True" if ready else "False",
            Reason.RECONCILED if ready else self._ready_reason(phase),
            message,
        )
        self.update(phase=phase, message=message, observed_generation=self.view.generation)
        self._send()

    def write_aspects(self) -> None:
        """Write the collected conditions and fields, leaving phase and Ready as they are.

        For reconcilers of one aspect (the pooler, the backups) that run after the schema
        reconciler has decided the phase; nothing is written when nothing changed.
        """
        if self.status != self.before:
            self._send()

    def _send(self) -> None:
        patch = minimal_patch(self.before.to_patch(), self.status.to_patch())
        if patch:
            self.runtime.write_status(self.view, patch)

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
    ) -> Outcome:
        self.write(phase, message)
        return Outcome(
            phase=phase.value,
            retry_after=retry_after,
            permanent_error=message if permanent else None,
        )
