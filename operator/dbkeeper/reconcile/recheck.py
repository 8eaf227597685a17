"""The periodic re-check: find what changed without an event on the resource.

A database that went away, came back, was moved to another revision outside dbkeeper,
or whose applied revision files changed, shows up here as a condition and an Event.
Resources whose current generation the change handlers have not finished are left to
them for a grace period (three re-check intervals); a generation still unhandled after
that (a change the handlers missed) is reconciled from here, so no spec change can be
left unanswered. A Failed resource otherwise waits for its spec to change.
"""

from __future__ import annotations

import logging
import threading
import time

from dbkeeper.api import DatabaseSchemaStatus, Phase
from dbkeeper.reconcile.runtime import Outcome, ResourceView, Runtime
from dbkeeper.reconcile.schema import reconcile_schema
from dbkeeper.reconcile.telemetry import probe_health
from dbkeeper.settings import Settings

log = logging.getLogger(__name__)

GRACE_INTERVALS = 3

# (resource, generation) -> when the re-check first saw that generation unhandled.
_unhandled_since: dict[tuple[str, int], float] = {}
_lock = threading.Lock()
_clock = time.monotonic


def _overdue(view: ResourceView, settings: Settings) -> bool:
    key, now = (view.key, view.generation), _clock()
    with _lock:
        for stale in [k for k in _unhandled_since if k[0] == view.key and k != key]:
            del _unhandled_since[stale]
        first = _unhandled_since.setdefault(key, now)
    grace = max(GRACE_INTERVALS * settings.recheck_interval.total_seconds(), 3.0)
    return now - first >= grace


def _handled(view: ResourceView) -> None:
    with _lock:
        _unhandled_since.pop((view.key, view.generation), None)


def recheck_schema(view: ResourceView, runtime: Runtime, settings: Settings) -> Outcome | None:
    status = DatabaseSchemaStatus.from_raw(view.status)
    if status.phase == Phase.MIGRATING:
        return None
    if status.phase is None or status.observed_generation != view.generation:
        if not _overdue(view, settings):
            return None
        log.warning(
            "generation %d of %s was not handled by the change handlers; reconciling it "
            "from the periodic re-check",
            view.generation,
            view.key,
        )
        outcome = reconcile_schema(view, runtime, settings)
        return Outcome(phase=outcome.phase)
    _handled(view)
    if status.phase == Phase.FAILED:
        return None
    outcome = reconcile_schema(view, runtime, settings)
    probe_health(view, runtime)
    # The re-check never asks kopf to retry: it runs again at the next interval anyway.
    return Outcome(phase=outcome.phase)
