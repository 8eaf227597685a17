"""The schema aspect of a pass: parse, connect, compare, move, report.

Observe first (spec, Secret, database revision), record what was seen, then act. Every
path ends in :meth:`StatusReport.outcome`, which settles the phase and tells the pass
whether to retry (temporary conditions) or wait for the user (permanent ones); the pass
writes the status once at its end (a move also announces itself before it starts).

A resource that Failed at its current generation is not moved again until its inputs
change (spec or annotations): re-running a failing revision every re-check would only
take a backup and fail again. The pass says when to try once more (``act_on_failed``).
"""

from __future__ import annotations

from dataclasses import dataclass

from dbkeeper.api import (
    ConditionType,
    DatabaseSchemaSpec,
    LastMigration,
    MigrationSetStatus,
    Phase,
    Reason,
    SpecInvalid,
    approved_revisions,
    parse_spec,
    relative_steps,
)
from dbkeeper.conninfo import ConnInfo
from dbkeeper.migrate import (
    MigrationError,
    MigrationEvent,
    MigrationOptions,
    MigrationSet,
    SchemaStatus,
    load_set,
    migrate_isolated,
    read_status,
    resolve_target,
)
from dbkeeper.reconcile.connection import CredentialsUnavailable, NoPrimary, database_conninfo
from dbkeeper.reconcile.kube_runtime import KubeRuntime
from dbkeeper.reconcile.runtime import Outcome, ResourceView, Runtime
from dbkeeper.reconcile.status_report import StatusReport
from dbkeeper.reconcile.user_sets import UserSet, describe_user_set, move_with_job
from dbkeeper.settings import Settings

_REASON_OF_ENGINE: dict[str, Reason] = {
    "UnknownRevision": Reason.UNKNOWN_REVISION,
    "DowngradeNotAllowed": Reason.DOWNGRADE_NOT_ALLOWED,
    "LockBusy": Reason.LOCK_BUSY,
    "LockTimeout": Reason.LOCK_TIMEOUT,
    "RevisionFailed": Reason.MIGRATION_FAILED,
    "LintBlocked": Reason.LINT_BLOCKED,
    "DatabaseUnreachable": Reason.DATABASE_UNREACHABLE,
    "BackupFailed": Reason.BACKUP_BEFORE_MIGRATE_FAILED,
    "InvalidMigrationSet": Reason.UNKNOWN_MIGRATION_SET,
    "LintUnavailable": Reason.MIGRATION_FAILED,
    "Interrupted": Reason.MIGRATION_FAILED,
    "SetTooLarge": Reason.UNKNOWN_MIGRATION_SET,
    "SourceUnavailable": Reason.MIGRATION_SOURCE_UNAVAILABLE,
    "MigrationJobFailed": Reason.MIGRATION_JOB_FAILED,
    "MigrationJobLost": Reason.MIGRATION_JOB_FAILED,
}

_EVENT_REASON = {
    "started": ("Normal", "MigrationStarted"),
    "revision_applied": ("Normal", "RevisionApplied"),
    "revision_reverted": ("Normal", "RevisionReverted"),
    "failed": ("Warning", "MigrationFailed"),
    "finished": ("Normal", "MigrationSucceeded"),
    "lint_warning": ("Warning", "LintWarning"),
    "drift_found": ("Warning", "DriftDetected"),
    "invalid_index_dropped": ("Normal", "InvalidIndexDropped"),
}


@dataclass
class Found:
    """What observing got as far as, for the aspects that run after the schema."""

    spec: DatabaseSchemaSpec | None = None
    conninfo: ConnInfo | None = None
    reachable: bool = False
    problem: str | None = None
    """Why the database could not be used, in words (when it could not)."""


@dataclass(frozen=True)
class SchemaResult:
    """How the schema aspect ended, and what the next aspects may build on."""

    outcome: Outcome
    found: Found


@dataclass(frozen=True)
class Observed:
    """What was found before acting."""

    spec: DatabaseSchemaSpec
    conninfo: ConnInfo
    migration_set: MigrationSet
    schema: SchemaStatus
    target: str | None
    user_set: UserSet | None = None
    """Set when the set comes from a ConfigMap or an image (it then runs as a Job)."""


def describe(revision: str | None) -> str:
    return revision if revision is not None else "base (empty)"


def target_of(spec: DatabaseSchemaSpec, migration_set: MigrationSet) -> str | None:
    """The revision id the spec asks for.

    A relative target (``-1``) counts from the set's head, not from the database's
    current revision, so applying the same spec twice never moves twice.
    """
    wanted = spec.migrations.target_revision
    if relative_steps(wanted) is not None:
        return resolve_target(migration_set, migration_set.head, wanted)
    return resolve_target(migration_set, None, wanted)


def _retry_delay(settings: Settings) -> float:
    return settings.retry_delay.total_seconds()


def observe(
    view: ResourceView,
    runtime: Runtime,
    settings: Settings,
    report: StatusReport,
    found: Found | None = None,
) -> Observed | Outcome:
    """Parse, connect and read the revision; an Outcome when that already decides.

    ``found`` is filled in as far as observing gets.
    """
    found = found if found is not None else Found()
    try:
        spec = parse_spec(view.spec)
    except SpecInvalid as exc:
        report.condition(
            ConditionType.SCHEMA_CURRENT,
            "Unknown",
            Reason.INVALID_SPEC,
            str(exc),
            event="Warning",
        )
        return report.outcome(Phase.FAILED, str(exc), permanent=True)
    found.spec = spec
    migrations = spec.migrations
    bundled: MigrationSet | None = None
    if migrations.source_kind == "bundled":
        try:
            bundled = load_set(migrations.set_label)
        except MigrationError as exc:
            return _set_unusable(report, exc, settings)
        report.update(migration_set=MigrationSetStatus(source="bundled", name=bundled.name))
    try:
        conninfo = database_conninfo(spec, view, runtime)
    except CredentialsUnavailable as exc:
        found.problem = str(exc)
        reason = Reason(exc.reason)
        report.condition(
            ConditionType.DATABASE_REACHABLE, "False", reason, str(exc), event="Warning"
        )
        return _waiting(report, str(exc), settings)
    except NoPrimary as exc:
        found.problem = str(exc)
        report.condition(
            ConditionType.DATABASE_REACHABLE,
            "False",
            Reason.NO_PRIMARY,
            str(exc),
            event="Warning",
        )
        return _waiting(report, str(exc), settings)
    found.conninfo = conninfo
    user_set: UserSet | None = None
    if bundled is not None:
        migration_set = bundled
    else:
        described = _describe(view, runtime, spec, conninfo, settings, report)
        if isinstance(described, Outcome):
            return described
        user_set = described
        migration_set = user_set.described.migration_set
    try:
        schema = read_status(conninfo, migration_set)
    except MigrationError as exc:
        found.problem = str(exc)
        report.condition(
            ConditionType.DATABASE_REACHABLE,
            "False",
            Reason.DATABASE_UNREACHABLE,
            str(exc),
            event="Warning",
        )
        return _waiting(report, str(exc), settings)
    found.reachable = True
    recovered = report.condition(
        ConditionType.DATABASE_REACHABLE,
        "True",
        Reason.DATABASE_REACHABLE,
        f"connected to {conninfo.describe()}",
    )
    if recovered and report.before.phase == Phase.DEGRADED:
        report.event("Normal", "DatabaseRecovered", f"{conninfo.describe()} is reachable again")
    try:
        target = target_of(spec, migration_set)
    except MigrationError as exc:
        # No target: the one the status held before is not what the spec asks for now.
        report.update(
            current_revision=schema.current_revision,
            head_revision=schema.head_revision,
            target_revision=None,
            pending_revisions=[],
        )
        report.condition(
            ConditionType.SCHEMA_CURRENT,
            "False",
            Reason.UNKNOWN_REVISION,
            str(exc),
            event="Warning",
        )
        return report.outcome(Phase.FAILED, str(exc), permanent=True)
    _record_schema(report, migration_set, schema, target)
    return Observed(spec, conninfo, migration_set, schema, target, user_set)


def _set_unusable(report: StatusReport, exc: MigrationError, settings: Settings) -> Outcome:
    """The set cannot be used: waiting when that may heal by itself, Failed otherwise."""
    reason = _REASON_OF_ENGINE.get(exc.reason, Reason.UNKNOWN_MIGRATION_SET)
    report.condition(ConditionType.SCHEMA_CURRENT, "False", reason, str(exc), event="Warning")
    if exc.transient:
        return _waiting(report, str(exc), settings)
    return report.outcome(Phase.FAILED, str(exc), permanent=True)


def _describe(
    view: ResourceView,
    runtime: Runtime,
    spec: DatabaseSchemaSpec,
    conninfo: ConnInfo,
    settings: Settings,
    report: StatusReport,
) -> UserSet | Outcome:
    """The set from a ConfigMap or an image, described by a Job (never run here)."""
    kind = spec.migrations.source_kind
    status = MigrationSetStatus(source=kind, name=spec.migrations.set_label)
    if not isinstance(runtime, KubeRuntime):
        message = (
            f"a migration set from spec.migrations.{kind} runs as a Kubernetes Job: it needs "
            "the operator in a cluster (use set, or dbkeeper migrate --migrations-dir here)"
        )
        report.update(migration_set=status)
        return _set_unusable(report, MigrationError("InvalidMigrationSet", message), settings)
    try:
        user_set = describe_user_set(view, spec, runtime, conninfo, settings)
    except MigrationError as exc:
        report.update(migration_set=status)
        return _set_unusable(report, exc, settings)
    report.update(
        migration_set=status.model_copy(
            update={"identity": user_set.identity, "job": user_set.jobs.last_job}
        )
    )
    return user_set


def _waiting(report: StatusReport, message: str, settings: Settings) -> Outcome:
    """Not ready for a reason that may heal: Degraded if it was serving, else Pending."""
    was_serving = report.before.phase in {Phase.READY, Phase.DEGRADED}
    phase = Phase.DEGRADED if was_serving else Phase.PENDING
    return report.outcome(phase, message, retry_after=_retry_delay(settings))


def _pending(migration_set: MigrationSet, current: str | None, target: str | None) -> list[str]:
    here, there = migration_set.position(current), migration_set.position(target)
    ids = migration_set.ids
    if there >= here:
        return ids[here:there]
    return list(reversed(ids[there:here]))


def _record_schema(
    report: StatusReport, migration_set: MigrationSet, schema: SchemaStatus, target: str | None
) -> None:
    """Revision fields, drift and out-of-band findings, with Events when they change."""
    previous = report.before.current_revision
    pending = (
        [] if schema.unknown_current else _pending(migration_set, schema.current_revision, target)
    )
    report.update(
        current_revision=schema.current_revision,
        target_revision=target,
        head_revision=schema.head_revision,
        pending_revisions=pending,
        drift=[
            f"revision {d.revision}: file checksum {d.current[:12]} differs from applied "
            f"{d.recorded[:12]}"
            for d in schema.drift
        ],
    )
    if schema.unknown_current:
        report.condition(
            ConditionType.DRIFT_FREE,
            "False",
            Reason.OUT_OF_BAND_CHANGE,
            f"the database is at revision {schema.current_revision}, which migration set "
            f"{migration_set.name} does not contain: it was changed outside dbkeeper",
            event="Warning",
        )
    elif schema.drift:
        revisions = ", ".join(d.revision for d in schema.drift)
        report.condition(
            ConditionType.DRIFT_FREE,
            "False",
            Reason.CHECKSUM_MISMATCH,
            f"applied revision files changed since they were applied: {revisions}",
            event="Warning",
            event_reason="DriftDetected",
        )
    else:
        report.condition(ConditionType.DRIFT_FREE, "True", Reason.NO_DRIFT, "no drift found")
    moved_outside = (
        report.before.phase is not None
        and report.before.phase != Phase.MIGRATING
        and previous != schema.current_revision
        and report.before.current_revision is not None
    )
    if moved_outside:
        report.event(
            "Warning",
            Reason.OUT_OF_BAND_CHANGE.value,
            f"revision changed from {describe(previous)} to "
            f"{describe(schema.current_revision)} outside this operator",
        )


def reconcile_schema(view: ResourceView, runtime: Runtime, settings: Settings) -> Outcome:
    """Bring the database to the spec's target revision and write the result (the schema
    aspect alone, as one pass: for runs without a cluster, such as the demo)."""
    report = StatusReport(view, runtime)
    result = schema_aspect(view, runtime, settings, report)
    report.commit()
    return result.outcome


def schema_aspect(
    view: ResourceView,
    runtime: Runtime,
    settings: Settings,
    report: StatusReport,
    *,
    act_on_failed: bool = True,
) -> SchemaResult:
    """The schema part of a pass; its findings go into ``report`` (not written here)."""
    found = Found()
    return SchemaResult(_schema(view, runtime, settings, report, found, act_on_failed), found)


def _still_failed(report: StatusReport, view: ResourceView, observed: Observed) -> Outcome | None:
    """The last failure again, when it was at this generation and nothing asks to retry
    (for a set from a ConfigMap or an image, its files changing asks to retry)."""
    before = report.before
    if before.phase != Phase.FAILED or before.observed_generation != view.generation:
        return None
    if observed.user_set is not None and (
        before.migration_set is None or before.migration_set.identity != observed.user_set.identity
    ):
        return None
    message = before.message or "failed; change the spec to try again"
    return report.outcome(Phase.FAILED, message, permanent=True)


def _schema(
    view: ResourceView,
    runtime: Runtime,
    settings: Settings,
    report: StatusReport,
    found: Found,
    act_on_failed: bool,
) -> Outcome:
    observed = observe(view, runtime, settings, report, found)
    if isinstance(observed, Outcome):
        return observed
    schema, target = observed.schema, observed.target
    if schema.unknown_current:
        message = (
            f"not migrating: revision {schema.current_revision} is not in migration set "
            f"{observed.migration_set.name}; restore the database or stamp it to a known "
            "revision"
        )
        report.condition(ConditionType.SCHEMA_CURRENT, "False", Reason.OUT_OF_BAND_CHANGE, message)
        return report.outcome(Phase.DEGRADED, message, retry_after=_retry_delay(settings))
    if schema.current_revision == target:
        return _at_target(report, observed)
    if not act_on_failed:
        still = _still_failed(report, view, observed)
        if still is not None:
            return still
    return _move(view, runtime, settings, report, observed)


def _at_target(report: StatusReport, observed: Observed) -> Outcome:
    message = f"at revision {describe(observed.target)}"
    report.condition(ConditionType.SCHEMA_CURRENT, "True", Reason.AT_TARGET, message)
    if report.status.conditions and any(
        c.type == ConditionType.DRIFT_FREE and c.status == "False" for c in report.status.conditions
    ):
        return report.outcome(Phase.DEGRADED, message + ", with drift (see status.drift)")
    return report.outcome(Phase.READY, message)


def move_options(
    view: ResourceView,
    spec: DatabaseSchemaSpec,
    target: str | None,
    settings: Settings,
    *,
    dropping: bool = False,
) -> MigrationOptions:
    """The engine's options for a move of ``view``'s database to ``target``.

    ``dropping``: the move of ``deletionPolicy: Drop`` (down to base, consented by the
    policy itself, no lint: it only runs the set's own downgrades).
    """
    migrations = spec.migrations
    actor = f"dbkeeper:{view.namespace}/{view.name}"
    return MigrationOptions(
        target=target if target is not None else "base",
        allow_downgrade=True if dropping else migrations.allow_downgrade,
        lock_timeout=migrations.lock_timeout,
        statement_timeout=migrations.statement_timeout,
        lock_retries=migrations.lock_retries,
        advisory_lock_wait=settings.advisory_lock_wait,
        lint_mode="off" if dropping else migrations.lint,
        approved=approved_revisions(view.annotations),
        actor=f"{actor}:delete" if dropping else actor,
    )


def _abandon_grace(settings: Settings) -> float:
    """How long a move may go on once its pass is abandoned: most of the shutdown time,
    leaving a few seconds to stop the child and exit."""
    total = settings.shutdown_timeout.total_seconds()
    return max(0.0, total - min(5.0, total / 2))


def _move(
    view: ResourceView,
    runtime: Runtime,
    settings: Settings,
    report: StatusReport,
    observed: Observed,
) -> Outcome:
    schema, target = observed.schema, observed.target
    direction = (
        "upgrade"
        if observed.migration_set.position(target)
        > observed.migration_set.position(schema.current_revision)
        else "downgrade"
    )
    hooks = runtime.migration_hooks(view, observed.spec, observed.conninfo)
    refusal = hooks.backup_unavailable if hooks is not None else None
    if refusal is not None:
        # Known before anything runs: the move is neither started nor announced.
        message = f"not migrating to {describe(target)}: {refusal}"
        report.condition(
            ConditionType.SCHEMA_CURRENT, "False", Reason.BACKUP_BEFORE_MIGRATE_FAILED, message
        )
        return _waiting(report, message, settings)
    started = runtime.now()
    running = LastMigration(
        from_revision=schema.current_revision,
        to_revision=target,
        direction=direction,
        started_at=started,
        result="Running",
    )
    report.update(last_migration=running)
    report.condition(
        ConditionType.SCHEMA_CURRENT,
        "False",
        Reason.MIGRATING,
        f"moving from {describe(schema.current_revision)} to {describe(target)}",
    )
    report.write(Phase.MIGRATING, f"migrating to {describe(target)}")

    def forward(event: MigrationEvent) -> None:
        event_type, reason = _EVENT_REASON.get(event.kind, ("Normal", "Migration"))
        runtime.event(
            view, "Warning" if event_type == "Warning" else "Normal", reason, event.message
        )

    options = move_options(view, observed.spec, target, settings)
    try:
        if observed.user_set is not None:
            moved = move_with_job(
                observed.user_set,
                options,
                hooks,
                _pending(observed.migration_set, schema.current_revision, target),
                schema.current_revision,
                target,
                direction == "downgrade",
                forward,
            )
            count, seconds, backup_id = len(moved.applied), moved.duration, moved.backup_id
            report.update(
                migration_set=(report.status.migration_set or _job_status(observed)).model_copy(
                    update={"job": moved.job}
                )
            )
        else:
            result = migrate_isolated(
                observed.conninfo,
                observed.migration_set,
                options,
                hooks=hooks,
                on_event=forward,
                abandoned=runtime.abandoned(),
                abandon_grace=_abandon_grace(settings),
            )
            count, seconds, backup_id = len(result.steps), result.duration, result.backup_id
    except MigrationError as exc:
        if observed.user_set is not None and observed.user_set.jobs.last_job:
            report.update(
                migration_set=(report.status.migration_set or _job_status(observed)).model_copy(
                    update={"job": observed.user_set.jobs.last_job}
                )
            )
        return _failed(report, runtime, settings, observed, running, exc)
    finished = running.model_copy(
        update={
            "finished_at": runtime.now(),
            "result": "Succeeded",
            "backup_id": backup_id,
            "message": f"{count} revision(s) in {seconds.total_seconds():.1f}s",
        }
    )
    after = read_status(observed.conninfo, observed.migration_set)
    _record_schema(report, observed.migration_set, after, target)
    report.update(last_migration=finished)
    if direction == "downgrade":
        report.event(
            "Normal",
            "RolledBack",
            f"rolled back from {describe(schema.current_revision)} to {describe(target)}",
        )
    return _at_target(
        report, Observed(observed.spec, observed.conninfo, observed.migration_set, after, target)
    )


def _job_status(observed: Observed) -> MigrationSetStatus:
    kind = observed.spec.migrations.source_kind
    identity = observed.user_set.identity if observed.user_set is not None else None
    return MigrationSetStatus(source=kind, name=observed.migration_set.name, identity=identity)


def _failed(
    report: StatusReport,
    runtime: Runtime,
    settings: Settings,
    observed: Observed,
    running: LastMigration,
    exc: MigrationError,
) -> Outcome:
    try:
        after = read_status(observed.conninfo, observed.migration_set)
        _record_schema(report, observed.migration_set, after, observed.target)
    except MigrationError:
        pass  # the database went away; the revision fields keep their last known values
    reason = _REASON_OF_ENGINE.get(exc.reason, Reason.MIGRATION_FAILED)
    message = str(exc)
    report.update(
        last_migration=running.model_copy(
            update={"finished_at": runtime.now(), "result": "Failed", "message": message}
        )
    )
    report.condition(ConditionType.SCHEMA_CURRENT, "False", reason, message)
    if exc.transient:
        if exc.reason == "DatabaseUnreachable":
            report.condition(
                ConditionType.DATABASE_REACHABLE, "False", Reason.DATABASE_UNREACHABLE, message
            )
        return _waiting(report, message, settings)
    return report.outcome(Phase.FAILED, message, permanent=True)
