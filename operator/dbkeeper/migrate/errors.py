"""Why a migration did not happen: one exception type with a reason from a closed set.

The operator maps ``reason`` to status conditions and decides whether to retry
(:data:`TRANSIENT_REASONS` heal by themselves; the others need a person).
Messages are one line, never contain a password, and say what to do next.
"""

from __future__ import annotations

from typing import Literal, get_args

from dbkeeper.conninfo import redact

Reason = Literal[
    "UnknownRevision",
    "DowngradeNotAllowed",
    "LockBusy",
    "LockTimeout",
    "RevisionFailed",
    "LintBlocked",
    "DatabaseUnreachable",
    "BackupFailed",
    "InvalidMigrationSet",
    "LintUnavailable",
    "Interrupted",
    "SetTooLarge",
    "SourceUnavailable",
    "MigrationJobFailed",
    "MigrationJobLost",
]

REASONS: frozenset[str] = frozenset(get_args(Reason))

# Failures that go away without a change of spec or files: retried with backoff. A
# lock held by someone else is released in time; a backup destination that refused a
# write may be fixed (mounted, emptied) without touching the resource. An interrupted
# move (SIGTERM, Ctrl-C) was rolled back and can simply run again. A set's source that
# cannot be read yet (a ConfigMap not created, an image not pullable) may appear, and a
# migration Job whose pod was lost with its node can run again.
TRANSIENT_REASONS: frozenset[str] = frozenset(
    {
        "DatabaseUnreachable",
        "LockBusy",
        "LockTimeout",
        "BackupFailed",
        "Interrupted",
        "SourceUnavailable",
        "MigrationJobLost",
    }
)


class MigrationError(Exception):
    """A migration was refused or failed; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: Reason, message: str, revision: str | None = None) -> None:
        one_line = " ".join(redact(message).split())
        super().__init__(one_line)
        self.reason: Reason = reason
        self.message = one_line
        self.revision = revision

    @property
    def transient(self) -> bool:
        return self.reason in TRANSIENT_REASONS

    def __str__(self) -> str:
        return self.message
