"""The one error type of dbkeeper's database security layer.

Its message names what is wrong and what is allowed, and never holds a password, a
verifier or any other Secret value: libpq's error text passes through
:func:`dbkeeper.conninfo.redact` first and statements are never quoted.
"""

from __future__ import annotations

from typing import Literal

SecurityReason = Literal[
    "InvalidDeclaration",
    "InvalidRole",
    "DatabaseUnreachable",
    "RoleNotFound",
    "PermissionDenied",
    "ApplyFailed",
]


class SecurityError(Exception):
    """Roles, privileges or auditing could not be read or applied; nothing was changed."""

    def __init__(self, reason: SecurityReason, message: str) -> None:
        super().__init__(message)
        self.reason: SecurityReason = reason
        self.message = message
