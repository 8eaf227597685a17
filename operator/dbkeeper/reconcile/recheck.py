"""The periodic re-check: find what changed without an event on the resource.

A database that went away, came back, was moved to another revision outside dbkeeper,
or whose applied revision files changed, shows up here as a condition and an Event.
Resources whose current generation the change handlers have not finished are left to
them, and a Failed resource waits for its spec to change.
"""

from __future__ import annotations

from dbkeeper.api import DatabaseSchemaStatus, Phase
from dbkeeper.reconcile.runtime import Outcome, ResourceView, Runtime
from dbkeeper.reconcile.schema import reconcile_schema
from dbkeeper.reconcile.telemetry import probe_health
from dbkeeper.settings import Settings


def recheck_schema(view: ResourceView, runtime: Runtime, settings: Settings) -> Outcome | None:
    status = DatabaseSchemaStatus.from_raw(view.status)
    if status.phase in {None, Phase.MIGRATING, Phase.FAILED}:
        return None
    if status.observed_generation != view.generation:
        return None
    outcome = reconcile_schema(view, runtime, settings)
    probe_health(view, runtime)
    # The re-check never asks kopf to retry: it runs again at the next interval anyway.
    return Outcome(phase=outcome.phase)
