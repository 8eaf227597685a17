"""Which pooler pods a move PAUSEs around its risky revisions, in a cluster.

Every ready pod of the resource's pooler is paused, as the schema owner (the pooler
lists it in ``admin_users``). Each pod's admin console is tried before the move: a pod
that does not answer, or does not serve the database, is left out with a Warning Event
and the move goes on without pausing it. A risky revision then runs for that pod's
clients as it would with ``pauseRiskyRevisions: false`` (its locks still bounded by
``lockTimeout``), rather than holding every schema change back until the pod is
reachable again. A pod that answers but cannot PAUSE within the bound makes the
revision fail, and RESUME follows on every path (see :mod:`dbkeeper.reconcile.hooks`).
"""

from __future__ import annotations

from collections.abc import Callable

from dbkeeper.api import DatabaseSchemaSpec
from dbkeeper.conninfo import ConnInfo
from dbkeeper.kube import KubeClient
from dbkeeper.manifests.pooler import pooler_name
from dbkeeper.pooler.admin import AdminConsole, AdminConsoleError
from dbkeeper.reconcile.hooks import PoolerPause
from dbkeeper.reconcile.pooler_pods import (
    ADMIN_CONNECT_TIMEOUT,
    PoolerPod,
    admin_conninfo,
    list_ready_pods,
)

# How long PAUSE may wait for the pods' open transactions before the revision is
# refused (and the pods resumed).
PAUSE_WAIT_SECONDS = 30.0

SKIPPED_REASON = "PoolerPauseSkipped"

Warn = Callable[[str, str], None]
"""Posts a Warning Event: (reason, message)."""


def _unreachable(pod: PoolerPod, admin: ConnInfo, alias: str) -> str | None:
    """Why ``pod`` cannot be paused, or None when its console answers and serves ``alias``."""
    try:
        databases = AdminConsole(admin, connect_timeout=ADMIN_CONNECT_TIMEOUT).show_databases()
    except AdminConsoleError as exc:
        return str(exc)
    if not any(db.name == alias for db in databases):
        return f"it does not serve database {alias}"
    return None


def pooler_pauses(
    namespace: str,
    resource_name: str,
    spec: DatabaseSchemaSpec,
    kube: KubeClient,
    owner: ConnInfo,
    warn: Warn,
    wait_seconds: float = PAUSE_WAIT_SECONDS,
) -> tuple[PoolerPause, ...]:
    """A PoolerPause per reachable ready pooler pod; none when pausing is not wanted."""
    if not spec.pooler.enabled or not spec.migrations.pause_risky_revisions:
        return ()
    if owner.password is None:
        return ()
    alias = spec.database.name
    pods = list_ready_pods(kube, namespace, pooler_name(resource_name), spec.pooler.port)
    pauses: list[PoolerPause] = []
    for pod in pods:
        admin = admin_conninfo(pod, owner.user, owner.password)
        problem = _unreachable(pod, admin, alias)
        if problem is not None:
            warn(
                SKIPPED_REASON,
                f"pooler pod {pod.describe()} will not be paused around risky revisions: {problem}",
            )
            continue
        pauses.append(PoolerPause(admin=admin, database=alias, wait_seconds=wait_seconds))
    return tuple(pauses)
