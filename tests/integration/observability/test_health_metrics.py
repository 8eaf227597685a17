"""Probe results, published and scraped: the numbers on-call sees follow the database."""

from __future__ import annotations

import dataclasses

from dbkeeper import metrics
from dbkeeper.conninfo import ConnInfo
from dbkeeper.health import probe_database
from dbkeeper.local.postgres import free_port
from tests.integration.observability.conftest import scrape


def _values(server: metrics.MetricsServer, name: str) -> dict[str, float]:
    return {
        sample.name: sample.value
        for sample in scrape(server)
        if sample.labels.get("name") == name and sample.labels.get("namespace") == "health"
    }


def test_up_follows_the_database(database: ConnInfo, metrics_server: metrics.MetricsServer) -> None:
    metrics.set_database_health("health", "follows", probe_database(database))
    reachable = _values(metrics_server, "follows")
    assert reachable["dbkeeper_database_up"] == 1
    assert reachable["dbkeeper_database_max_connections"] == 200

    gone = dataclasses.replace(database, port=free_port())
    metrics.set_database_health("health", "follows", probe_database(gone))
    unreachable = _values(metrics_server, "follows")
    assert unreachable["dbkeeper_database_up"] == 0
    assert "dbkeeper_database_connections" not in unreachable
    metrics.forget_resource("health", "follows")
