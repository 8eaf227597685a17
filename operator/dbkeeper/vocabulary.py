"""Closed sets of words the resource, the engine and the role manager share.

Kept apart from every package (and free of imports) so the typed resource, the
migration engine and the security layer take them from one place without pulling each
other in.
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
