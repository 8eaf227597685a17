"""Which pooler pods count as ready, and where their PgBouncer listens."""

from __future__ import annotations

from typing import Any

from dbkeeper.reconcile.pooler_pods import (
    PoolerPod,
    admin_conninfo,
    label_selector,
    pooler_pod,
    ready_pods,
)

DEFAULT_PORT = 6432


def _pod(
    name: str = "clinic-pooler-abc",
    *,
    ip: str | None = "10.1.2.3",
    phase: str = "Running",
    ready: str | None = "True",
    port: int | None = 6500,
    deleting: bool = False,
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "pgbouncer"}
    if port is not None:
        container["ports"] = [{"name": "pgbouncer", "containerPort": port, "protocol": "TCP"}]
    status: dict[str, Any] = {"phase": phase}
    if ip is not None:
        status["podIP"] = ip
    if ready is not None:
        status["conditions"] = [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Ready", "status": ready},
        ]
    metadata: dict[str, Any] = {"name": name}
    if deleting:
        metadata["deletionTimestamp"] = "2026-11-25T10:00:00Z"
    return {"metadata": metadata, "spec": {"containers": [container]}, "status": status}


def test_a_running_ready_pod_with_an_ip_is_reached_on_its_own_container_port() -> None:
    assert pooler_pod(_pod(), DEFAULT_PORT) == PoolerPod("clinic-pooler-abc", "10.1.2.3", 6500)


def test_a_pod_whose_ready_condition_is_false_is_left_out() -> None:
    assert pooler_pod(_pod(ready="False"), DEFAULT_PORT) is None


def test_a_pod_without_a_ready_condition_is_left_out() -> None:
    assert pooler_pod(_pod(ready=None), DEFAULT_PORT) is None


def test_a_pod_without_an_ip_is_left_out() -> None:
    assert pooler_pod(_pod(ip=None), DEFAULT_PORT) is None


def test_a_pod_that_is_not_running_is_left_out() -> None:
    assert pooler_pod(_pod(phase="Pending"), DEFAULT_PORT) is None


def test_a_terminating_pod_is_left_out_even_while_still_ready() -> None:
    assert pooler_pod(_pod(deleting=True), DEFAULT_PORT) is None


def test_without_a_named_container_port_the_spec_port_is_used() -> None:
    found = pooler_pod(_pod(port=None), DEFAULT_PORT)
    assert found is not None
    assert found.port == DEFAULT_PORT


def test_ready_pods_keeps_only_the_ready_ones_sorted_by_name() -> None:
    pods = [
        _pod("p-c", ip="10.0.0.3"),
        _pod("p-a", ready="False"),
        _pod("p-b", ip="10.0.0.2"),
        _pod("p-d", ip=None),
    ]
    assert [p.name for p in ready_pods(pods, DEFAULT_PORT)] == ["p-b", "p-c"]


def test_the_label_selector_is_the_deployments_match_labels() -> None:
    deployment = {
        "spec": {
            "selector": {
                "matchLabels": {
                    "app.kubernetes.io/name": "pgbouncer",
                    "app.kubernetes.io/instance": "clinic-pooler",
                }
            }
        }
    }
    assert label_selector(deployment) == (
        "app.kubernetes.io/instance=clinic-pooler,app.kubernetes.io/name=pgbouncer"
    )


def test_a_deployment_without_match_labels_selects_nothing() -> None:
    assert label_selector({"spec": {"selector": {}}}) is None


def test_the_admin_console_is_the_pgbouncer_database_of_the_pod_and_hides_the_password() -> None:
    info = admin_conninfo(PoolerPod("p", "10.0.0.9", 6500), "owner_x", "s3cret-value")
    assert (info.host, info.port, info.dbname, info.user) == (
        "10.0.0.9",
        6500,
        "pgbouncer",
        "owner_x",
    )
    assert "s3cret-value" not in repr(info)
