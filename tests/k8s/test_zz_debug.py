import pytest
from tests.k8s.test_harness_trivial_operator import *  # noqa

def test_debug(k8s_cluster, run_operator):
    k8s_cluster.ensure_namespace("shop")
    with run_operator(OPERATOR) as op:
        k8s_cluster.create(widget("x", "shop"))
        k8s_cluster.wait_for(lambda: ready_widget(k8s_cluster, "shop", "x"), 20, "x")
    with run_operator(OPERATOR, peering="widgets", priority=100, memo={"instance": "high"}) as high:
        with run_operator(OPERATOR, peering="widgets", priority=1, memo={"instance": "low"}) as low:
            import time; time.sleep(3)
            txt = low.log_text()
            print("\n".join(l for l in txt.splitlines() if "peering" in l.lower() or "Pausing" in l or "Resuming" in l))
            print(k8s_cluster.get("kopf.dev/v1", "ClusterKopfPeering", None, "widgets"))
