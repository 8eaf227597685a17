"""Closed sets of words the resource, the engine and the role manager share.

Kept apart from every package (and free of imports) so the typed resource, the
migration engine, the security layer and the shapes of the command line's JSON
(dbkeeper/json_shapes/) take them from one place without pulling each other in.
"""

from __future__ import annotations

from typing import Final, Literal

LintMode = Literal["off", "warn", "block"]
"""What the safety lint does with dangerous DDL: nothing, warn, or block the move."""
LINT_MODES: Final[tuple[LintMode, ...]] = ("off", "warn", "block")

RoleKind = Literal["owner", "app", "readonly", "auditor"]
"""The least-privilege roles a resource can declare, in the order they are managed."""
ROLE_KINDS: Final[tuple[RoleKind, ...]] = ("owner", "app", "readonly", "auditor")

BOOKKEEPING_SCHEMA: Final = "dbkeeper"
"""The migrator's own schema: ``migration_history`` lives there, out of every set's way."""
HISTORY_TABLE: Final = "migration_history"
VERSION_TABLE: Final = "alembic_version"
"""Where Alembic records the current revision, in the first schema of the search path."""

Direction = Literal["upgrade", "downgrade"]
"""Which way a step moves: applying a revision, or reverting it."""
Outcome = Literal["succeeded", "failed"]
"""How a recorded step of a move ended."""

EventKind = Literal[
    "started",
    "revision_applied",
    "revision_reverted",
    "failed",
    "finished",
    "lint_warning",
    "drift_found",
    # An online revision's earlier attempt left an INVALID index that was dropped.
    "invalid_index_dropped",
]
"""What a running migration reports as it goes (the operator turns them into Events)."""

DumpFormat = Literal["directory", "custom"]
"""pg_dump's format of a backup: a folder of per-table files, or one archive file."""
VerifyResult = Literal["passed", "failed"]
"""The verdict of a backup's last restore drill that ran to its end."""
