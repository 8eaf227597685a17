"""Database-side security: least-privilege roles, password rotation, read auditing, TLS.

Public API (the reconcile layer and the CLI use only these names)::

    load_privileges(migration_set_path) -> PrivilegeDeclaration
    apply_roles(admin, database, roles, privileges) -> RolesReport
    check_roles(admin, database, roles, privileges) -> list[RoleDrift]
    role_verifiers(admin, usernames) -> dict[str, str]      # for the pooler's userlist
    rotate_password(admin, role, new_password) -> str       # the new SCRAM verifier
    with_verifier(users, role, verifier) -> list[UserEntry]
    configure_read_audit(admin, database, app_role, tables) -> ReadAuditState
    read_audit_state(admin, database, tables) -> ReadAuditState
    with_tls(info, sslmode, ca_pem) -> ConnInfo ; write_ca_file(pem) -> Path
"""

from __future__ import annotations

from dbkeeper.security.errors import SecurityError, SecurityReason
from dbkeeper.security.privileges import (
    PRIVILEGES_FILE,
    ROLE_KINDS,
    PrivilegeDeclaration,
    RoleKind,
    RolePrivileges,
    load_privileges,
    parse_privileges,
)
from dbkeeper.security.read_audit import (
    AUDIT_ROLE,
    ReadAuditReason,
    ReadAuditState,
    configure_read_audit,
    read_audit_state,
)
from dbkeeper.security.roles import (
    RoleDeclaration,
    RoleDrift,
    RolesReport,
    apply_roles,
    check_roles,
    role_verifiers,
)
from dbkeeper.security.rotation import rotate_password, with_verifier
from dbkeeper.security.tls import check_ca_pem, with_tls, write_ca_file

__all__ = [
    "AUDIT_ROLE",
    "PRIVILEGES_FILE",
    "ROLE_KINDS",
    "PrivilegeDeclaration",
    "ReadAuditReason",
    "ReadAuditState",
    "RoleDeclaration",
    "RoleDrift",
    "RoleKind",
    "RolePrivileges",
    "RolesReport",
    "SecurityError",
    "SecurityReason",
    "apply_roles",
    "check_ca_pem",
    "check_roles",
    "configure_read_audit",
    "load_privileges",
    "parse_privileges",
    "read_audit_state",
    "role_verifiers",
    "rotate_password",
    "with_tls",
    "with_verifier",
    "write_ca_file",
]
