"""The migration engine: move a database to a revision of a migration set, safely.

Public API (the operator and the CLI use only these names)::

    load_set(name, root=None) -> MigrationSet
    migrate(conninfo, migration_set, options, hooks=None, on_event=None) -> MigrationResult
    migrate_isolated(conninfo, migration_set, options, hooks=None, on_event=None,
                     timeout=None) -> MigrationResult   # same move, in a child process
    read_status(conninfo, migration_set) -> SchemaStatus
    read_history(conninfo, limit=50) -> list[HistoryEntry]
    plan_move(conninfo | None, migration_set, options) -> MovePlan
    lint_sql(sql) -> list[LintFinding]
    lint_many(sqls) -> list[list[LintFinding]]       # one squawk run for many
    describe_set(migration_set) -> SetDescription      # what a describe Job reports
    encode_description(description) -> dict
    parse_description(data, name, source) -> DescribedSet  # the operator reading it back
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dbkeeper.lazy import lazy_exports

if TYPE_CHECKING:
    from dbkeeper.migrate.describe import (
        DescribedRevision,
        DescribedSet,
        RevisionFlags,
        SetDescription,
        describe_set,
        encode_description,
        parse_description,
    )
    from dbkeeper.migrate.errors import REASONS, TRANSIENT_REASONS, MigrationError, Reason
    from dbkeeper.migrate.events import EventKind, MigrationEvent, MigrationResult
    from dbkeeper.migrate.history import HistoryEntry
    from dbkeeper.migrate.isolated import HooksFactory, migrate_isolated
    from dbkeeper.migrate.lint import (
        IGNORED_RULES,
        RISKY_RULES,
        LintFinding,
        lint_many,
        lint_sql,
    )
    from dbkeeper.migrate.lock import MIGRATION_LOCK_KEY
    from dbkeeper.migrate.options import LINT_MODES, LintMode, MigrationOptions
    from dbkeeper.migrate.plan import MigrationHooks, MovePlan, Step, plan_move
    from dbkeeper.migrate.runner import migrate
    from dbkeeper.migrate.sets import MigrationSet, Revision, load_set, load_set_from_path
    from dbkeeper.migrate.status import (
        DriftItem,
        SchemaStatus,
        checksum_matches,
        read_history,
        read_status,
    )
    from dbkeeper.migrate.targets import resolve_target

__all__ = [
    "IGNORED_RULES",
    "LINT_MODES",
    "MIGRATION_LOCK_KEY",
    "REASONS",
    "RISKY_RULES",
    "TRANSIENT_REASONS",
    "DescribedRevision",
    "DescribedSet",
    "DriftItem",
    "EventKind",
    "HistoryEntry",
    "HooksFactory",
    "LintFinding",
    "LintMode",
    "MigrationError",
    "MigrationEvent",
    "MigrationHooks",
    "MigrationOptions",
    "MigrationResult",
    "MigrationSet",
    "MovePlan",
    "Reason",
    "Revision",
    "RevisionFlags",
    "SchemaStatus",
    "SetDescription",
    "Step",
    "checksum_matches",
    "describe_set",
    "encode_description",
    "lint_many",
    "lint_sql",
    "load_set",
    "load_set_from_path",
    "migrate",
    "migrate_isolated",
    "parse_description",
    "plan_move",
    "read_history",
    "read_status",
    "resolve_target",
]

__getattr__ = lazy_exports(__name__, __file__)
