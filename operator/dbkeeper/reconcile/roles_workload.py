"""The roles aspect of a pass: roles, privileges, password rotation and read auditing.

Runs after the schema aspect (roles are granted on the tables it created) and before
the pooler's (which logs in as these roles), in every pass, when ``spec.roles`` is set.
It connects as the role of
``spec.database.credentialsSecret`` (it must be able to create roles and grant; a
superuser also lets it check stored passwords and configure pgaudit) and, in order:

1. rotates the password of every role whose Secret changed (database first; the pooler
   reconciler, which runs next, then puts the same password's verifier in its userlist);
2. compares the roles with the migration set's ``privileges.yaml``: right after a spec
   change the differences are simply applied; at an unchanged generation they are drift,
   reported (``RolesInSync`` False, ``RoleDrift``, one Warning Event) and repaired;
3. configures pgaudit's read auditing of the patient-data tables for the application
   role and reports ``ReadAuditActive``.

Its conditions go into the pass's :class:`StatusReport`; phase and Ready stay as the
schema aspect left them. No password, verifier or Secret value is logged, posted or
written to the status.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dbkeeper.api import ConditionType, DatabaseSchemaSpec, Reason
from dbkeeper.conninfo import ConnInfo
from dbkeeper.migrate import MigrationError, load_set
from dbkeeper.reconcile.role_secrets import RoleSecretUnusable, declared_roles
from dbkeeper.reconcile.runtime import ResourceView, Runtime
from dbkeeper.reconcile.status_report import StatusReport
from dbkeeper.security import (
    ROLE_KINDS,
    PrivilegeDeclaration,
    ReadAuditState,
    RoleDeclaration,
    RoleDrift,
    SecurityError,
    apply_roles,
    check_roles,
    configure_read_audit,
    load_privileges,
    read_audit_state,
    rotate_password,
)
from dbkeeper.security.passwords import changed_passwords, verifiers_readable

log = logging.getLogger(__name__)


_SENTENCES_SHOWN = 10

_REASON_OF_SECURITY: Mapping[str, Reason] = {
    "InvalidDeclaration": Reason.INVALID_SPEC,
    "InvalidRole": Reason.INVALID_SPEC,
    "DatabaseUnreachable": Reason.DATABASE_UNREACHABLE,
}


@dataclass(frozen=True)
class RolesTarget:
    """What one pass works on: the declared roles, where they live, what they may do."""

    admin: ConnInfo
    database: str
    roles: tuple[RoleDeclaration, ...]
    privileges: PrivilegeDeclaration
    migration_set: str


class RolesNotManageable(Exception):
    """This pass cannot manage the roles; ``reason`` is the RolesInSync reason."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _sentences(items: Sequence[object]) -> str:
    shown = "; ".join(str(item) for item in items[:_SENTENCES_SHOWN])
    more = len(items) - _SENTENCES_SHOWN
    return shown + (f"; and {more} more" if more > 0 else "")


def _roles_named(roles: Sequence[RoleDeclaration]) -> str:
    return ", ".join(f"{role.kind} {role.username}" for role in roles)


def _target(
    view: ResourceView, spec: DatabaseSchemaSpec, runtime: Runtime, admin: ConnInfo
) -> RolesTarget:
    try:
        roles = declared_roles(view, spec, runtime)
    except RoleSecretUnusable as exc:
        raise RolesNotManageable(exc.reason, str(exc)) from None
    if spec.migrations.source_kind != "bundled":
        raise RolesNotManageable(
            Reason.NOT_CONFIGURED,
            "spec.roles needs the privileges file of a bundled migration set; roles are not "
            f"managed yet for a set from spec.migrations.{spec.migrations.source_kind}",
        )
    try:
        migration_set = load_set(spec.migrations.set_label)
        privileges = load_privileges(migration_set.path)
    except MigrationError as exc:
        raise RolesNotManageable(Reason.UNKNOWN_MIGRATION_SET, str(exc)) from None
    except SecurityError as exc:
        raise RolesNotManageable(Reason.NOT_CONFIGURED, exc.message) from None
    return RolesTarget(
        admin, spec.database.name, tuple(roles), privileges, spec.migrations.set_label
    )


def _settled(report: StatusReport, generation: int) -> bool:
    """Whether RolesInSync was last computed from this generation and found a steady state.

    Differences found then are drift; before (a new spec, a first pass, a pass that
    failed) they are simply what applying the spec changes.
    """
    previous = report.before.condition(ConditionType.ROLES_IN_SYNC)
    return (
        previous is not None
        and previous.observed_generation == generation
        and previous.reason in {Reason.ROLES_IN_SYNC, Reason.ROLE_DRIFT}
    )


def _rotate(
    target: RolesTarget, drifts: Sequence[RoleDrift], readable: bool, report: StatusReport
) -> None:
    """Give every role whose Secret changed its new password; one Event per role."""
    missing = {drift.role for drift in drifts if drift.kind == "missing_role"}
    existing = {
        role.username
        for role in target.roles
        if role.username not in missing and role.username != target.admin.user
    }
    for role in changed_passwords(target.admin, target.roles, drifts, existing, readable):
        rotate_password(target.admin, role.username, role.password)
        log.info("password of role %s rotated", role.username)
        report.event(
            "Normal",
            Reason.ROLE_SECRET_CHANGED.value,
            f"password of role {role.username} rotated: its Secret changed; the database "
            "has the new password and the pooler's userlist follows",
        )


def _sync_roles(target: RolesTarget, report: StatusReport, generation: int) -> None:
    """Rotate, compare, apply or repair; set RolesInSync."""
    drifts = check_roles(target.admin, target.database, target.roles, target.privileges)
    readable = verifiers_readable(target.admin)
    _rotate(target, drifts, readable, report)
    differences = [drift for drift in drifts if drift.kind != "password"]
    in_sync = f"{_roles_named(target.roles)} in sync with the privileges of {target.migration_set}"
    if not readable:
        in_sync += (
            " (stored passwords are not compared: the credentials role is not a superuser; "
            "a changed role Secret is found by logging in as the role)"
        )
    if not differences:
        report.condition(
            ConditionType.ROLES_IN_SYNC, "True", Reason.ROLES_IN_SYNC, in_sync, event="Normal"
        )
        return
    if _settled(report, generation):
        # An operator keeps the declared state: drift is repaired at once, and the
        # condition keeps saying what was found until the next check confirms the repair.
        apply_roles(target.admin, target.database, target.roles, target.privileges)
        message = (
            f"{len(differences)} difference(s) from the declared roles found and repaired "
            f"automatically: {_sentences(differences)}"
        )
        log.warning("role drift of %s repaired: %s", report.view.key, _sentences(differences))
        report.condition(
            ConditionType.ROLES_IN_SYNC, "False", Reason.ROLE_DRIFT, message, event="Warning"
        )
        return
    applied = apply_roles(target.admin, target.database, target.roles, target.privileges)
    done: list[str] = []
    if applied.created:
        done.append(f"created {', '.join(applied.created)}")
    if applied.changes:
        done.append(f"{len(applied.changes)} privilege or attribute change(s)")
    message = in_sync + (f"; {'; '.join(done)}" if done else "")
    report.condition(
        ConditionType.ROLES_IN_SYNC, "True", Reason.ROLES_IN_SYNC, message, event="Normal"
    )


def _audit_state(
    target: RolesTarget, spec: DatabaseSchemaSpec, reconfigure: bool
) -> ReadAuditState | str:
    """pgaudit's state after configuring it where needed; a sentence when not applicable."""
    app = next((role for role in target.roles if role.kind == "app"), None)
    if app is None or spec.roles is None or spec.roles.app is None:
        return "spec.roles.app is not set: read auditing follows the application role"
    tables = target.privileges.read_audited
    if not tables:
        return (
            f"migration set {target.migration_set} declares no tables whose reads are "
            "audited (read_audit in its privileges.yaml): reads are not audited"
        )
    state = read_audit_state(target.admin, target.database, tables)
    if state.code == "PgauditNotLoaded" or (state.active and not reconfigure):
        return state
    return configure_read_audit(target.admin, target.database, app.username, tables)


def _sync_read_audit(
    target: RolesTarget, spec: DatabaseSchemaSpec, report: StatusReport, generation: int
) -> None:
    previous = report.before.condition(ConditionType.READ_AUDIT_ACTIVE)
    reconfigure = previous is None or previous.observed_generation != generation
    try:
        state = _audit_state(target, spec, reconfigure)
    except SecurityError as exc:
        state = ReadAuditState(active=False, reason=exc.message, code="NotConfigured")
    if isinstance(state, str):
        report.condition(ConditionType.READ_AUDIT_ACTIVE, "False", Reason.NOT_CONFIGURED, state)
        return
    if state.active:
        report.condition(
            ConditionType.READ_AUDIT_ACTIVE,
            "True",
            Reason.READ_AUDIT_ACTIVE,
            state.reason,
            event="Normal",
        )
        return
    reason = Reason.PGAUDIT_MISSING if state.code == "PgauditNotLoaded" else Reason.NOT_CONFIGURED
    report.condition(
        ConditionType.READ_AUDIT_ACTIVE, "False", reason, state.reason, event="Warning"
    )


def declares_roles(spec: DatabaseSchemaSpec) -> bool:
    """Whether ``spec.roles`` names any role for the operator to manage."""
    return spec.roles is not None and any(
        getattr(spec.roles, kind) is not None for kind in ROLE_KINDS
    )


def forget_roles(report: StatusReport) -> None:
    """Drop the roles' conditions: the spec no longer declares roles."""
    for type_ in (ConditionType.ROLES_IN_SYNC, ConditionType.READ_AUDIT_ACTIVE):
        report.drop_condition(type_)


def roles_aspect(
    view: ResourceView,
    spec: DatabaseSchemaSpec,
    runtime: Runtime,
    admin: ConnInfo,
    report: StatusReport,
) -> bool:
    """One pass over the roles and the read audit; False when it must be tried again."""
    try:
        target = _target(view, spec, runtime, admin)
        _sync_roles(target, report, view.generation)
    except RolesNotManageable as exc:
        report.condition(
            ConditionType.ROLES_IN_SYNC, "False", exc.reason, str(exc), event="Warning"
        )
        return False
    except SecurityError as exc:
        reason = _REASON_OF_SECURITY.get(exc.reason, Reason.ROLE_DRIFT)
        message = f"roles not applied: {exc.message}"
        report.condition(ConditionType.ROLES_IN_SYNC, "False", reason, message, event="Warning")
        return False
    _sync_read_audit(target, spec, report, view.generation)
    return True
