"""One reconcile pass of one DatabaseSchema: observe once, act in a fixed order, write once.

A pass reads the resource fresh, then runs the aspects in order, each adding its
conditions and fields to one :class:`StatusReport`:

1. schema (:mod:`dbkeeper.reconcile.schema`): spec, Secret, primary, revision, the move;
2. roles (:mod:`dbkeeper.reconcile.roles_workload`), once the schema is in place, and
   the audit trail (:mod:`dbkeeper.reconcile.audit_trail`): sealed, verified, signed;
3. workloads (:mod:`dbkeeper.reconcile.workloads`): the pooler, then the backups;
   then the TypeScript module of ``spec.types`` (:mod:`dbkeeper.reconcile.types_workload`),
   once the schema is at its target;
4. readiness (:mod:`dbkeeper.reconcile.readiness`): Ready only when everything the
   spec asks for is healthy, Degraded otherwise;
5. telemetry: the database's health on ``/metrics``.

and the report is written once at the end, conditional on the resourceVersion it read
(a move also announces ``Migrating`` before it starts). The aspects share what the
schema aspect observed (the parsed spec, the owner's connection to the primary); the
Secrets are read at most once per pass. Nothing here coordinates through status.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from dbkeeper.api import USER_ANNOTATIONS, Phase
from dbkeeper.conninfo import ConnInfo
from dbkeeper.kube import WorkAbandoned
from dbkeeper.reconcile.audit_trail import audit_aspect
from dbkeeper.reconcile.kube_runtime import KubeRuntime
from dbkeeper.reconcile.readiness import degrade_unless_healthy
from dbkeeper.reconcile.roles_workload import declares_roles, forget_roles, roles_aspect
from dbkeeper.reconcile.runtime import ResourceView, Runtime
from dbkeeper.reconcile.schema import schema_aspect
from dbkeeper.reconcile.status_report import StatusReport
from dbkeeper.reconcile.telemetry import probe_health
from dbkeeper.reconcile.types_workload import reconcile_types
from dbkeeper.reconcile.workloads import workloads_aspect
from dbkeeper.settings import Settings

log = logging.getLogger(__name__)

# The schema must be read (and moved) first: roles are granted on its tables.
_ROLES_WAIT_IN = frozenset({Phase.PENDING, Phase.MIGRATING})

Signature = tuple[int, tuple[str | None, ...]]
"""What a user changes to ask for work: the generation (spec) and the annotations that
ask for something (:data:`USER_ANNOTATIONS`: approvals, backup requests)."""


def signature_of(generation: int, annotations: Mapping[str, str]) -> Signature:
    return generation, tuple(annotations.get(key) for key in USER_ANNOTATIONS)


def view_signature(view: ResourceView) -> Signature:
    return signature_of(view.generation, view.annotations)


@dataclass(frozen=True)
class PassResult:
    """How a pass ended, for the loop to decide when the next one runs."""

    phase: str | None
    """The phase written; None when the resource is gone or being deleted."""
    retry_after: float | None = None
    """Seconds until a retry (something temporary is in the way); None: all done."""
    failed: bool = False
    """Failed for a reason only a change of the resource can heal."""
    signature: Signature | None = None
    """The inputs this pass worked from."""
    config_map: str | None = None
    """The ConfigMap the migration set came from, if it did: its edits are inputs too."""


def run_pass(
    namespace: str,
    name: str,
    runtime: Runtime,
    settings: Settings,
    *,
    failed_at: Signature | None = None,
) -> PassResult:
    """One pass over the resource ``namespace/name``; see the module docstring.

    ``failed_at`` is what the resource's inputs were when it last Failed for good: a
    resource Failed at its current generation is moved again only when they differ
    (a spec or annotation change, or a pass of a freshly started operator).
    """
    view = runtime.read(namespace, name)
    if view is None or view.deleting:
        return PassResult(phase=None)
    act_on_failed = failed_at is None or failed_at != view_signature(view)
    report = StatusReport(view, runtime)
    schema = schema_aspect(view, runtime, settings, report, act_on_failed=act_on_failed)
    found, outcome = schema.found, schema.outcome
    settled = outcome.retry_after is None
    spec = found.spec
    if spec is not None:
        owner = found.conninfo if found.reachable else None
        if not declares_roles(spec):
            forget_roles(report)
        elif owner is not None and report.status.phase not in _ROLES_WAIT_IN:
            roles_done = _guarded(
                view, "roles", lambda: roles_aspect(view, spec, runtime, owner, report)
            )
            settled = roles_done and settled
        if owner is not None and report.status.phase not in _ROLES_WAIT_IN:
            _guarded(view, "audit", lambda: _audit(view, report, owner, settings))
        # Workloads exist only in a cluster.
        kube = runtime if isinstance(runtime, KubeRuntime) else None
        if kube is not None and settings.manage_workloads and view.uid is not None:
            workloads_done = _guarded(
                view,
                "workloads",
                lambda: workloads_aspect(
                    view, spec, kube, settings, report, found.conninfo, found.problem
                ),
            )
            settled = workloads_done and settled
        # Not a workload (DBKEEPER_MANAGE_WORKLOADS leaves it on): one ConfigMap the spec
        # asks for by name.
        if kube is not None and view.uid is not None:
            types_done = _guarded(
                view, "types", lambda: reconcile_types(view, spec, kube, report, owner)
            )
            settled = types_done and settled
        outcome = degrade_unless_healthy(report, outcome, settings.pooler_ready_grace)
    report.commit()
    if spec is not None:
        reached = found.conninfo if found.reachable else None
        probe_health(view, reached, found.problem or "the database was not reached")
    retry = outcome.retry_after
    if not settled and retry is None:
        retry = settings.retry_delay.total_seconds()
    return PassResult(
        phase=outcome.phase,
        retry_after=retry,
        failed=outcome.permanent_error is not None,
        signature=view_signature(view),
        config_map=(
            spec.migrations.config_map.name
            if spec is not None and spec.migrations.config_map is not None
            else None
        ),
    )


def _audit(view: ResourceView, report: StatusReport, owner: ConnInfo, settings: Settings) -> bool:
    audit_aspect(view, report, owner, settings)
    return True


def _guarded(view: ResourceView, aspect: str, run: Callable[[], bool]) -> bool:
    """Run one aspect; an unexpected error in it is logged and retried, and never keeps
    the other aspects' findings from being written."""
    try:
        return run()
    except WorkAbandoned:
        raise
    except Exception:
        log.exception("the %s aspect of %s failed unexpectedly; retrying", aspect, view.key)
        return False
