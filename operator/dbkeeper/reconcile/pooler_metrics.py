"""Pool metrics of a resource's pooler in a cluster, read from each ready pod.

Every periodic pass reads ``SHOW POOLS`` and ``SHOW STATS`` from the admin console of
each ready pooler pod (as the schema owner, with a short connect timeout) and publishes
them through :func:`dbkeeper.metrics.set_pool_stats`, added up over the pods: the series
are per resource, never per pod, so a rollout does not leave stale series behind. Only
the pooled database counts, not the admin console's own ``pgbouncer`` pool. A pod that
does not answer is left out and logged; when no pod answers (or the pooler is off) the
series are removed rather than left at old values.
"""

from __future__ import annotations

import logging

from dbkeeper import metrics
from dbkeeper.api import DatabaseSchemaSpec
from dbkeeper.kube import KubeClient, KubeError
from dbkeeper.manifests.pooler import pooler_name
from dbkeeper.pooler.admin import AdminConsole, AdminConsoleError
from dbkeeper.pooler.stats import DatabaseStats, PoolStats
from dbkeeper.reconcile.pooler_pods import (
    ADMIN_CONNECT_TIMEOUT,
    PoolerPod,
    admin_conninfo,
    list_ready_pods,
)

log = logging.getLogger(__name__)


def _read_pod(
    pod: PoolerPod, user: str, password: str, alias: str
) -> tuple[list[PoolStats], list[DatabaseStats]] | None:
    console = AdminConsole(admin_conninfo(pod, user, password), ADMIN_CONNECT_TIMEOUT)
    try:
        pools = [p for p in console.show_pools() if p.database == alias]
        traffic = [t for t in console.show_stats() if t.database == alias]
    except AdminConsoleError as exc:
        log.warning("pool metrics: pooler pod %s not read: %s", pod.describe(), exc)
        return None
    return pools, traffic


def record_pool_metrics(
    namespace: str,
    resource_name: str,
    spec: DatabaseSchemaSpec,
    kube: KubeClient,
    owner: tuple[str, str] | None,
) -> None:
    """Publish the pool metrics of the resource's pooler (``owner`` is user, password).

    Without a pooler, or without the owner's credentials, the series are removed.
    """
    if not spec.pooler.enabled or owner is None:
        metrics.set_pool_stats(namespace, resource_name, None)
        return
    user, password = owner
    try:
        pods = list_ready_pods(kube, namespace, pooler_name(resource_name), spec.pooler.port)
    except KubeError as exc:
        log.warning("pool metrics of %s/%s: pods not listed: %s", namespace, resource_name, exc)
        pods = []
    pools: list[PoolStats] = []
    traffic: list[DatabaseStats] = []
    answered = 0
    for pod in pods:
        read = _read_pod(pod, user, password, spec.database.name)
        if read is None:
            continue
        answered += 1
        pools.extend(read[0])
        traffic.extend(read[1])
    metrics.set_pool_stats(namespace, resource_name, pools if answered else None, traffic)
