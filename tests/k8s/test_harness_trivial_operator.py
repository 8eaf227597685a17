"""A kopf operator runs unmodified against the test control plane through the harness.

The operator is `tests.k8s.trivial_operator`: it marks Widgets Ready, stores a result,
posts an Event and holds a finalizer until its delete handler ran.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from typing import Any

import pytest

from tests.k8s.conftest import WIDGET_CRD_PATH, RunOperator
from tests.k8s.harness import Cluster

pytestmark = pytest.mark.k8s_crds(WIDGET_CRD_PATH)

WIDGETS = "test.dbkeeper.dev/v1"
OPERATOR = "tests.k8s.trivial_operator"
# How many Widgets the load test creates; raise it to measure (e.g. 200).
LOAD_COUNT = int(os.environ.get("DBKEEPER_K8S_LOAD_COUNT", "100"))


def widget(name: str, namespace: str, size: int = 3) -> dict[str, Any]:
    return {
        "apiVersion": WIDGETS,
        "kind": "Widget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"size": size},
    }


def ready_widget(cluster: Cluster, namespace: str, name: str) -> dict[str, Any] | None:
    found = cluster.get(WIDGETS, "Widget", namespace, name)
    if found is not None and found.get("status", {}).get("phase") == "Ready":
        return found
    return None


def test_create_runs_the_handler_patches_status_and_posts_an_event(
    k8s_cluster: Cluster, run_operator: RunOperator
) -> None:
    k8s_cluster.ensure_namespace("shop")
    with run_operator(OPERATOR) as operator:
        k8s_cluster.create(widget("w1", "shop", size=4))
        handled = k8s_cluster.wait_for(
            lambda: ready_widget(k8s_cluster, "shop", "w1"), 20, "widget w1 to become Ready"
        )
        assert handled["status"]["widget_created"] == {"doubled": 8}
        events = k8s_cluster.wait_for(
            lambda: [e for e in k8s_cluster.events("shop", "w1") if e["reason"] == "WidgetReady"],
            10,
            "the WidgetReady event",
        )
        assert events[0]["message"] == "size 4"
        assert events[0]["involvedObject"]["uid"] == handled["metadata"]["uid"]
    assert "Handler 'widget_created' succeeded" in operator.log_text()


def test_deletion_waits_for_the_delete_handler_then_releases_the_finalizer(
    k8s_cluster: Cluster, run_operator: RunOperator
) -> None:
    k8s_cluster.ensure_namespace("shop")
    with run_operator(OPERATOR) as operator:
        k8s_cluster.create(widget("w1", "shop"))
        held = k8s_cluster.wait_for(
            lambda: ready_widget(k8s_cluster, "shop", "w1"), 20, "widget w1 to become Ready"
        )
        assert held["metadata"]["finalizers"]
        k8s_cluster.delete(WIDGETS, "Widget", "shop", "w1")
        k8s_cluster.wait_for(
            lambda: k8s_cluster.get(WIDGETS, "Widget", "shop", "w1") is None,
            20,
            "widget w1 to be gone",
        )
    assert "Widget released." in operator.log_text()


def test_namespaced_operator_handles_only_its_namespaces(
    k8s_cluster: Cluster, run_operator: RunOperator
) -> None:
    for namespace in ("mine", "theirs"):
        k8s_cluster.ensure_namespace(namespace)
    with run_operator(OPERATOR, namespaces=["mine"]):
        k8s_cluster.create(widget("w1", "theirs"))
        k8s_cluster.create(widget("w1", "mine"))
        k8s_cluster.wait_for(
            lambda: ready_widget(k8s_cluster, "mine", "w1"), 20, "the widget in 'mine'"
        )
        assert ready_widget(k8s_cluster, "theirs", "w1") is None


def peer_priorities(cluster: Cluster, name: str) -> list[int]:
    peering = cluster.get("kopf.dev/v1", "ClusterKopfPeering", None, name) or {}
    return sorted(peer["priority"] for peer in peering.get("status", {}).values())


def test_with_peering_the_higher_priority_instance_handles_and_the_other_takes_over(
    k8s_cluster: Cluster, run_operator: RunOperator
) -> None:
    k8s_cluster.ensure_namespace("shop")
    high = run_operator(OPERATOR, peering="widgets", priority=100, memo={"instance": "high"})
    with high:
        k8s_cluster.wait_for(
            lambda: peer_priorities(k8s_cluster, "widgets") == [100], 10, "the first peer"
        )
        with run_operator(OPERATOR, peering="widgets", priority=1, memo={"instance": "low"}):
            k8s_cluster.wait_for(
                lambda: peer_priorities(k8s_cluster, "widgets") == [1, 100], 10, "both peers"
            )
            for index in range(3):
                k8s_cluster.create(widget(f"w{index}", "shop"))
            handlers = [
                k8s_cluster.wait_for(
                    functools.partial(ready_widget, k8s_cluster, "shop", f"w{index}"),
                    20,
                    f"w{index} to become Ready",
                )["status"]["handledBy"]
                for index in range(3)
            ]
            assert handlers == ["high"] * 3

            high.stop()
            k8s_cluster.create(widget("after", "shop"))
            taken_over = k8s_cluster.wait_for(
                lambda: ready_widget(k8s_cluster, "shop", "after"), 20, "the lower peer to resume"
            )
            assert taken_over["status"]["handledBy"] == "low"


def test_many_widgets_are_handled_well_within_a_minute(
    k8s_cluster: Cluster, run_operator: RunOperator
) -> None:
    namespaces = [f"load-{index}" for index in range(4)]
    for namespace in namespaces:
        k8s_cluster.ensure_namespace(namespace)
    names = [(namespaces[i % len(namespaces)], f"w{i}") for i in range(LOAD_COUNT)]
    with run_operator(OPERATOR, log_level=logging.INFO):
        started = time.monotonic()
        for namespace, name in names:
            k8s_cluster.create(widget(name, namespace))

        def all_ready() -> bool:
            ready = [
                item
                for namespace in namespaces
                for item in k8s_cluster.list(WIDGETS, "Widget", namespace)
                if item.get("status", {}).get("phase") == "Ready"
            ]
            return len(ready) == LOAD_COUNT

        k8s_cluster.wait_for(all_ready, 60, f"all {LOAD_COUNT} widgets to become Ready")
        elapsed = time.monotonic() - started
    print(f"\n{LOAD_COUNT} widgets created and handled in {elapsed:.1f} s")
