"""What happens when a DatabaseSchema is deleted: its deletionPolicy decides.

``Retain`` (the default) leaves the database, its schema and its data exactly as they
are; only the resource goes. ``Drop`` moves the schema down to base with the migration
set's own downgrades, which removes every object the set created and the data in them
(after a backup when backups are configured). The database itself is never dropped.
"""

from __future__ import annotations

from dbkeeper.api import SpecInvalid, parse_spec
from dbkeeper.migrate import MigrationError, load_set, migrate_isolated
from dbkeeper.reconcile.connection import CredentialsUnavailable, NoPrimary, database_conninfo
from dbkeeper.reconcile.runtime import Outcome, ResourceView, Runtime
from dbkeeper.reconcile.schema import move_options
from dbkeeper.reconcile.telemetry import forget
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
        migration_set = load_set(spec.migrations.set_name)
        migrate_isolated(
            conninfo,
            migration_set,
            move_options(view, spec, None, settings, dropping=True),
            hooks=runtime.migration_hooks(view, spec, conninfo),
        )
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
