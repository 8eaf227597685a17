"""What happens when a DatabaseSchema is deleted: its deletionPolicy decides.

``Retain`` (the default) leaves the database, its schema and its data exactly as they
are; only the resource goes. ``Drop`` moves the schema down to base with the migration
set's own downgrades, which removes every object the set created and the data in them
(after a backup when backups are configured). The database itself is never dropped.
"""

from __future__ import annotations

from dbkeeper.api import DatabaseSchemaSpec, SpecInvalid, parse_spec
from dbkeeper.conninfo import ConnInfo
from dbkeeper.migrate import (
    MigrationError,
    MigrationOptions,
    MigrationSet,
    load_set,
    migrate_isolated,
    read_status,
)
from dbkeeper.reconcile.connection import CredentialsUnavailable, NoPrimary, database_conninfo
from dbkeeper.reconcile.kube_runtime import KubeRuntime
from dbkeeper.reconcile.runtime import Outcome, ResourceView, Runtime
from dbkeeper.reconcile.schema import move_options
from dbkeeper.reconcile.telemetry import forget
from dbkeeper.reconcile.user_sets import describe_user_set, move_with_job
from dbkeeper.settings import Settings


def finalize_schema(view: ResourceView, runtime: Runtime, settings: Settings) -> Outcome:
    outcome = _finalize(view, runtime, settings)
    if outcome.retry_after is None:
        forget(view)
    return outcome


def _finalize(view: ResourceView, runtime: Runtime, settings: Settings) -> Outcome:
    try:
        spec = parse_spec(view.spec)
    except SpecInvalid:
        runtime.event(
            view,
            "Normal",
            "Retained",
            "resource deleted with an invalid spec: database left untouched",
        )
        return Outcome(phase="Deleted")
    if spec.deletion_policy != "Drop":
        runtime.event(
            view,
            "Normal",
            "Retained",
            f"deletionPolicy Retain: database {spec.database.name}, its schema and data "
            "are left as they are",
        )
        return Outcome(phase="Deleted")
    delay = settings.retry_delay.total_seconds()
    try:
        conninfo = database_conninfo(spec, view, runtime)
        options = move_options(view, spec, None, settings, dropping=True)
        if spec.migrations.source_kind == "bundled":
            migration_set = load_set(spec.migrations.set_label)
            migrate_isolated(
                conninfo,
                migration_set,
                options,
                hooks=runtime.migration_hooks(view, spec, conninfo),
            )
        else:
            migration_set = _drop_with_job(view, spec, runtime, conninfo, settings, options)
    except (CredentialsUnavailable, NoPrimary, MigrationError) as exc:
        runtime.event(
            view,
            "Warning",
            "DropFailed",
            f"deletionPolicy Drop could not remove the schema: {exc}; retrying (set "
            "deletionPolicy: Retain to release the resource without dropping)",
        )
        return Outcome(phase="Deleting", retry_after=delay)
    runtime.event(
        view,
        "Normal",
        "Dropped",
        f"deletionPolicy Drop: every object of migration set {migration_set.name} removed "
        f"from database {spec.database.name}",
    )
    return Outcome(phase="Deleted")


def _drop_with_job(
    view: ResourceView,
    spec: DatabaseSchemaSpec,
    runtime: Runtime,
    conninfo: ConnInfo,
    settings: Settings,
    options: MigrationOptions,
) -> MigrationSet:
    """The set from a ConfigMap or an image taken down to base by a migrate Job."""
    if not isinstance(runtime, KubeRuntime):
        raise MigrationError(
            "InvalidMigrationSet", "a set from a ConfigMap or an image is run by a Job"
        )
    user_set = describe_user_set(view, spec, runtime, conninfo, settings)
    migration_set = user_set.described.migration_set
    current = read_status(conninfo, migration_set).current_revision
    applied = migration_set.ids[: migration_set.position(current)]
    move_with_job(
        user_set,
        options,
        runtime.migration_hooks(view, spec, conninfo),
        list(reversed(applied)),
        current,
        None,
        downgrade=True,
        on_event=lambda _event: None,
    )
    return migration_set
