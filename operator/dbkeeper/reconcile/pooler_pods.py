"""The ready pods of a resource's pooler, and how to reach each one's admin console.

Pods are found through the pooler Deployment's own selector, and each pod's port is read
from the pod itself: during a rollout that changes the port, old pods still listen on
the old one. Only pods that can take traffic count (running, Ready, with an IP): a pod
the Service does not send clients to has no clients to pause or to report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dbkeeper.conninfo import ConnInfo
from dbkeeper.kube import KubeClient
from dbkeeper.manifests.pooler import PORT_NAME
from dbkeeper.pooler.admin import ADMIN_DATABASE

# Connecting to a pod's admin console for the periodic pass and the reachability check:
# a pod that does not answer quickly is reported, not waited for.
ADMIN_CONNECT_TIMEOUT = 3


@dataclass(frozen=True)
class PoolerPod:
    """One ready pooler pod: its name and where its PgBouncer listens."""

    name: str
    ip: str
    port: int

    def describe(self) -> str:
        return f"{self.name} ({self.ip}:{self.port})"


def is_ready(pod: Mapping[str, Any]) -> bool:
    """Running, its Ready condition True, and not on its way out."""
    metadata = pod.get("metadata") or {}
    if metadata.get("deletionTimestamp"):
        return False
    status = pod.get("status") or {}
    if status.get("phase") != "Running":
        return False
    conditions = status.get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _listen_port(pod: Mapping[str, Any], default_port: int) -> int:
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == PORT_NAME and port.get("containerPort"):
                return int(port["containerPort"])
    return default_port


def pooler_pod(pod: Mapping[str, Any], default_port: int) -> PoolerPod | None:
    """``pod`` as a PoolerPod when it is ready and has an IP; None otherwise.

    ``default_port`` is used when the pod names no ``pgbouncer`` container port.
    """
    ip = (pod.get("status") or {}).get("podIP")
    if not ip or not is_ready(pod):
        return None
    name = str((pod.get("metadata") or {}).get("name") or "")
    return PoolerPod(name=name, ip=str(ip), port=_listen_port(pod, default_port))


def ready_pods(pods: Iterable[Mapping[str, Any]], default_port: int) -> list[PoolerPod]:
    """The ready pods among ``pods``, sorted by name."""
    found = (pooler_pod(pod, default_port) for pod in pods)
    return sorted((pod for pod in found if pod is not None), key=lambda p: p.name)


def label_selector(deployment: Mapping[str, Any]) -> str | None:
    """The Deployment's ``matchLabels`` as a label selector; None when it has none."""
    labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    if not labels:
        return None
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def list_ready_pods(
    kube: KubeClient, namespace: str, deployment_name: str, default_port: int
) -> list[PoolerPod]:
    """The ready pods of the pooler Deployment ``deployment_name``; none if it is gone."""
    deployment = kube.get("Deployment", namespace, deployment_name)
    selector = label_selector(deployment) if deployment is not None else None
    if selector is None:
        return []
    return ready_pods(kube.list("Pod", namespace, label_selector=selector), default_port)


def admin_conninfo(pod: PoolerPod, user: str, password: str) -> ConnInfo:
    """The admin console of ``pod``, as ``user`` (a name in the pooler's admin_users).

    TLS is used when the pooler offers it; the password itself never crosses the wire,
    since PgBouncer authenticates with SCRAM.
    """
    return ConnInfo(
        host=pod.ip,
        port=pod.port,
        dbname=ADMIN_DATABASE,
        user=user,
        password=password,
        sslmode="prefer",
    )
