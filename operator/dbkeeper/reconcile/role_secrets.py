"""From ``spec.roles`` and its Secrets to the role declarations of the security layer.

Each declared role has a Secret with key ``password`` (and ``username`` unless the spec
names the role). A Secret that is missing or incomplete is a :class:`RoleSecretUnusable`
naming the Secret and the keys it needs; its values never appear in the message.
"""

from __future__ import annotations

from dbkeeper.api import DatabaseSchemaSpec, Reason
from dbkeeper.reconcile.connection import PASSWORD_KEY, USERNAME_KEY
from dbkeeper.reconcile.runtime import ResourceView, SecretReader
from dbkeeper.security import ROLE_KINDS, RoleDeclaration, SecurityError


class RoleSecretUnusable(Exception):
    """A role's Secret is missing or lacks a key; ``reason`` is the condition reason."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def declared_roles(
    view: ResourceView, spec: DatabaseSchemaSpec, runtime: SecretReader
) -> list[RoleDeclaration]:
    """The roles ``spec.roles`` declares, each with the password of its Secret.

    Every Secret is read before anything is declared, so one unusable Secret means no
    role is touched: the problems of all of them are named at once.
    """
    roles = spec.roles
    if roles is None:
        return []
    found: list[RoleDeclaration] = []
    problems: list[tuple[Reason, str]] = []
    for kind in ROLE_KINDS:
        role = getattr(roles, kind)
        if role is None:
            continue
        data = runtime.read_secret(view.namespace, role.secret)
        if data is None:
            problems.append(
                (
                    Reason.SECRET_MISSING,
                    f"Secret {role.secret} of the {kind} role not found in namespace "
                    f"{view.namespace}: create it with key {PASSWORD_KEY}"
                    + ("" if role.username else f" and key {USERNAME_KEY}"),
                )
            )
            continue
        username = role.username or data.get(USERNAME_KEY)
        password = data.get(PASSWORD_KEY)
        missing = [
            key for key, value in ((USERNAME_KEY, username), (PASSWORD_KEY, password)) if not value
        ]
        if missing or username is None or password is None:
            problems.append(
                (
                    Reason.SECRET_INVALID,
                    f"Secret {role.secret} of the {kind} role has no {' or '.join(missing)}",
                )
            )
            continue
        try:
            found.append(RoleDeclaration(kind, username, password))
        except SecurityError as exc:
            problems.append((Reason.SECRET_INVALID, f"Secret {role.secret}: {exc.message}"))
    if problems:
        reason = (
            Reason.SECRET_MISSING
            if any(r == Reason.SECRET_MISSING for r, _ in problems)
            else Reason.SECRET_INVALID
        )
        raise RoleSecretUnusable(reason, "; ".join(message for _, message in problems))
    return found
