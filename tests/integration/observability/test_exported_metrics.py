"""What the rules and the dashboard read is what the operator's /metrics really serves."""

from __future__ import annotations

from dbkeeper import metrics
from tests.integration.observability.conftest import record_sample_values, scrape
from tests.unit.observability.conftest import DASHBOARD_FILE, METRICS_DOC_FILE, load_alert_rules
from tests.unit.observability.dashboard_queries import dashboard_queries, load_dashboard
from tests.unit.observability.promql_names import metric_names


def _served_names(server: metrics.MetricsServer) -> set[str]:
    record_sample_values("health", "exported-names")
    return {sample.name for sample in scrape(server)}


def test_every_metric_in_the_alert_rules_is_served(
    metrics_server: metrics.MetricsServer,
) -> None:
    used = {name for rule in load_alert_rules() for name in metric_names(rule["expr"])}
    assert used, "no metric names found in the rules"
    assert used - _served_names(metrics_server) == set()


def test_every_metric_in_the_dashboard_is_served(
    metrics_server: metrics.MetricsServer,
) -> None:
    used = {
        name
        for query in dashboard_queries(load_dashboard(DASHBOARD_FILE))
        for name in metric_names(query)
    }
    assert used, "no metric names found in the dashboard"
    assert used - _served_names(metrics_server) == set()


def test_every_served_metric_is_a_dbkeeper_one(metrics_server: metrics.MetricsServer) -> None:
    assert {n for n in _served_names(metrics_server) if not n.startswith("dbkeeper_")} == set()


def test_every_served_metric_is_documented(metrics_server: metrics.MetricsServer) -> None:
    documented = METRICS_DOC_FILE.read_text()
    families = {
        name.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count")
        for name in _served_names(metrics_server)
        if not name.startswith("dbkeeper_process_")
    }
    assert {f for f in families if f"`{f}`" not in documented} == set()


def test_stopped_server_frees_its_port() -> None:
    server = metrics.start_metrics_server(0, addr="127.0.0.1")
    port = server.port
    server.stop()
    again = metrics.start_metrics_server(port, addr="127.0.0.1")
    again.stop()
