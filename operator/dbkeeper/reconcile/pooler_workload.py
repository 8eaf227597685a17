"""The pooler of one DatabaseSchema in a cluster: its four objects, its roles, its status.

From ``spec.pooler`` and the credentials Secrets this builds the PgBouncer settings and
userlist (:mod:`dbkeeper.reconcile.pooler_input`, pure), gives each pooled role the
SCRAM verifier that is in the userlist, applies ConfigMap, Secret, Deployment and
Service, and reports ``PoolerReady`` from the Deployment's ready replicas. Disabling the
pooler deletes the objects again.

The userlist reuses the verifier the server stores wherever the owner may read it, so
the server is left as it is; only otherwise is the role given the shared verifier of
its password (an Event ``RoleVerifierSet`` says so), which other poolers compute alike.

TLS from ``spec.pooler.clientTls`` and ``serverTls``: the Secrets they name are mounted
into the pods (:class:`PoolerTlsSecrets`) and pgbouncer.ini points at the mounted files.
A named Secret that does not exist, or lacks a key pgbouncer needs, keeps the objects as
they are and makes ``PoolerReady`` False naming it; the operator only checks that the
keys are there and never copies their contents anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dbkeeper.api import ConditionType, DatabaseSchemaSpec, PoolerStatus, Reason
from dbkeeper.conninfo import ConnInfo
from dbkeeper.manifests import HASH_ANNOTATION
from dbkeeper.manifests.pooler import (
    PoolerObjectsInput,
    PoolerTlsSecrets,
    build_pooler_configmap,
    build_pooler_deployment,
    build_pooler_secret,
    build_pooler_service,
    pooler_name,
)
from dbkeeper.pooler.settings import PoolerSettingsError
from dbkeeper.reconcile.connection import PASSWORD_KEY, USERNAME_KEY
from dbkeeper.reconcile.kube_runtime import KubeRuntime
from dbkeeper.reconcile.pooler_input import (
    PooledRole,
    pooler_input,
)
from dbkeeper.reconcile.runtime import ResourceView
from dbkeeper.reconcile.status_report import StatusReport
from dbkeeper.security import SecurityError, role_verifiers
from dbkeeper.security.rotation import store_verifiers
from dbkeeper.settings import Settings
from dbkeeper.vocabulary import ROLE_KINDS

POOLER_KINDS = ("Deployment", "Service", "ConfigMap", "Secret")
ROLE_VERIFIER_SET = "RoleVerifierSet"
"""The Event posted when the pooler aspect stores a verifier on a role."""


class PoolerUnavailable(Exception):
    """The pooler cannot be configured yet; ``reason`` is a condition reason."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


# Where each TLS Secret is named in the resource, for messages a user can act on.
_TLS_SECRET_FIELDS = {
    "client_certificate": "pooler.clientTls.certificateSecret",
    "client_ca": "pooler.clientTls.caSecret",
    "server_ca": "pooler.serverTls.caSecret",
}


def check_tls_secrets(namespace: str, tls: PoolerTlsSecrets, runtime: KubeRuntime) -> None:
    """Raise PoolerUnavailable naming the first TLS Secret that is missing or lacks a key.

    Only the presence of each key is looked at; the values are not kept.
    """
    for mount in tls.mounts():
        where = f"Secret {mount.secret} (from {_TLS_SECRET_FIELDS[mount.role]})"
        data = runtime.read_secret(namespace, mount.secret)
        if data is None:
            raise PoolerUnavailable(
                Reason.SECRET_MISSING,
                f"{where} does not exist in namespace {namespace}; the pooler waits for it",
            )
        absent = [key for key in mount.files if not data.get(key)]
        if absent:
            raise PoolerUnavailable(
                Reason.SECRET_INVALID,
                f"{where} has no {' or '.join(absent)} (PEM text); "
                f"needed keys: {', '.join(mount.files)}",
            )


def pooled_roles(
    view: ResourceView, spec: DatabaseSchemaSpec, runtime: KubeRuntime, owner: ConnInfo
) -> tuple[tuple[PooledRole, ...], list[str]]:
    """The owner and the spec's roles; and the roles left out because their Secret is not
    usable yet."""
    assert owner.password is not None
    found = {owner.user: PooledRole(owner.user, owner.password)}
    missing: list[str] = []
    roles = spec.roles
    for kind in ROLE_KINDS:
        role = getattr(roles, kind) if roles is not None else None
        if role is None:
            continue
        data = runtime.read_secret(view.namespace, role.secret) or {}
        username = role.username or data.get(USERNAME_KEY)
        password = data.get(PASSWORD_KEY)
        if not username or not password:
            missing.append(f"{kind} (Secret {role.secret})")
            continue
        found.setdefault(username, PooledRole(username, password))
    return tuple(sorted(found.values(), key=lambda r: r.name)), missing


def set_role_verifiers(
    server: ConnInfo,
    roles: tuple[PooledRole, ...],
    inp: PoolerObjectsInput,
    stored: Mapping[str, str],
) -> tuple[str, ...]:
    """Give each pooled role, in PostgreSQL, the verifier the pooler's userlist holds;
    returns the roles whose stored verifier was set.

    A role whose ``stored`` verifier is already the userlist's is left alone, so other
    poolers holding it keep logging in; the rest get the shared verifier, which any other
    dbkeeper pooler of the role computes alike.
    """
    verifiers = {user.name: user.verifier for user in inp.users}
    changing = [role for role in roles if stored.get(role.name) != verifiers[role.name]]
    try:
        store_verifiers(
            server, [(role.name, role.password, verifiers[role.name]) for role in changing]
        )
    except SecurityError as exc:
        raise PoolerUnavailable(Reason.POOLER_NOT_READY, exc.message) from None
    return tuple(role.name for role in changing)


def _stored_verifiers(server: ConnInfo, roles: tuple[PooledRole, ...]) -> dict[str, str]:
    try:
        return role_verifiers(server, [role.name for role in roles])
    except SecurityError as exc:
        raise PoolerUnavailable(Reason.POOLER_NOT_READY, exc.message) from None


def _current_hash(runtime: KubeRuntime, kind: str, namespace: str, name: str) -> str | None:
    found = runtime.kube.get(kind, namespace, name)
    if found is None:
        return None
    annotations: Mapping[str, str] = (found.get("metadata") or {}).get("annotations") or {}
    return annotations.get(HASH_ANNOTATION)


def ready_replicas(deployment: Mapping[str, Any] | None) -> int:
    status = (deployment or {}).get("status") or {}
    return int(status.get("readyReplicas") or 0)


def _readiness(ready: int, wanted: int) -> tuple[bool, str]:
    if ready >= 1:
        if ready >= wanted:
            return True, f"{ready}/{wanted} pooler replicas ready"
        return True, f"{ready}/{wanted} pooler replicas ready; waiting for the rest"
    return False, f"waiting for a pooler replica to become ready (0/{wanted} ready)"


def reconcile_pooler(
    view: ResourceView,
    spec: DatabaseSchemaSpec,
    runtime: KubeRuntime,
    settings: Settings,
    report: StatusReport,
    server: ConnInfo | None,
    problem: str | None = None,
) -> bool:
    """Apply or remove the pooler and report it; False when it must be tried again.

    ``server`` is the database as the pass observed it (the owner's connection to the
    primary); None when it could not be found, ``problem`` saying why.
    """
    if not spec.pooler.enabled:
        remove_pooler(view, runtime, report)
        return True
    if server is None:
        report.condition(
            ConditionType.POOLER_READY,
            "False",
            Reason.POOLER_NOT_READY,
            problem or "the database's connection details are not available yet",
        )
        return False
    try:
        roles, missing = pooled_roles(view, spec, runtime, server)
        # Empty unless the owner may read pg_authid; what it reads is reused as it is.
        stored = _stored_verifiers(server, roles)
        # The owner administers the pods: the operator PAUSEs them around risky revisions
        # and reads their pool metrics with the owner's password, which it holds anyway.
        inp = pooler_input(
            view,
            spec,
            server.host,
            server.port,
            roles,
            settings,
            admin_user=server.user,
            stored=stored,
        )
        # Before anything is applied: pods that cannot mount their certificates would
        # never start, and the pods running now keep serving meanwhile.
        check_tls_secrets(view.namespace, inp.tls, runtime)
        secret = build_pooler_secret(inp)
        secret_hash = secret["metadata"]["annotations"][HASH_ANNOTATION]
        if _current_hash(runtime, "Secret", view.namespace, inp.name) != secret_hash:
            # Before the Secret: pods must never hold a verifier the server does not.
            for role in set_role_verifiers(server, roles, inp, stored):
                report.event(
                    "Normal",
                    ROLE_VERIFIER_SET,
                    f"role {role}: stored SCRAM verifier set to the one dbkeeper computes "
                    "from its password, the same for every pooler of the role",
                )
    except PoolerUnavailable as exc:
        report.condition(ConditionType.POOLER_READY, "False", exc.reason, str(exc))
        return False
    except PoolerSettingsError as exc:
        report.condition(
            ConditionType.POOLER_READY,
            "False",
            Reason.POOLER_CONFIG_INVALID,
            str(exc),
            event="Warning",
        )
        return True
    configmap = build_pooler_configmap(inp)
    # Recorded before applying: should applying fail half-way, the status still says a
    # pooler exists, and disabling it later removes what was created.
    pooler = PoolerStatus(
        endpoint=f"{inp.name}.{view.namespace}.svc:{inp.settings.listen_port}",
        config_hash=configmap["metadata"]["annotations"][HASH_ANNOTATION],
        replicas=inp.replicas,
        ready_replicas=(report.status.pooler.ready_replicas if report.status.pooler else None),
    )
    report.update(pooler=pooler)
    for obj in (configmap, secret, build_pooler_deployment(inp), build_pooler_service(inp)):
        runtime.apply(view, obj)
    count = ready_replicas(runtime.kube.get("Deployment", view.namespace, inp.name))
    report.update(pooler=pooler.model_copy(update={"ready_replicas": count}))
    ready, message = _readiness(count, inp.replicas)
    if missing:
        message += "; left out until their Secret has username and password: " + ", ".join(missing)
    report.condition(
        ConditionType.POOLER_READY,
        "True" if ready else "False",
        Reason.POOLER_READY if ready else Reason.POOLER_NOT_READY,
        message,
        event="Normal" if ready else None,
    )
    return True


def remove_pooler(view: ResourceView, runtime: KubeRuntime, report: StatusReport) -> None:
    """Delete the pooler's objects (only ours) and its status.

    Only when the status says there was a pooler: resources that never had one cost no
    requests on every pass.
    """
    had_pooler = report.status.pooler is not None or (
        report.status.condition(ConditionType.POOLER_READY) is not None
    )
    if not had_pooler:
        return
    name = pooler_name(view.name)
    removed = [kind for kind in POOLER_KINDS if runtime.delete_owned(view, kind, name)]
    if removed:
        report.event(
            "Normal", "PoolerRemoved", f"pooler disabled: removed {', '.join(removed)} {name}"
        )
    report.drop_condition(ConditionType.POOLER_READY)
    report.update(pooler=None)
