"""No password and no free text reaches a metric label, from samples or from a real probe."""

from __future__ import annotations

import re

import psycopg

from dbkeeper import metrics
from dbkeeper.conninfo import ConnInfo
from dbkeeper.health import probe_database
from tests.integration.observability.conftest import record_sample_values, scrape

# Kubernetes names, revision ids, closed sets, query ids, versions: nothing with spaces,
# quotes, '=', '/', '@' or SQL in it.
_SAFE_LABEL_VALUE = re.compile(r"[A-Za-z0-9_.+:-]*")
_SECRET = "s3cr3t-in-a-literal"


def test_every_label_value_is_a_bounded_identifier(
    metrics_server: metrics.MetricsServer,
) -> None:
    record_sample_values("health", "label-safety")
    unsafe = {
        (sample.name, key, value)
        for sample in scrape(metrics_server)
        for key, value in sample.labels.items()
        if not _SAFE_LABEL_VALUE.fullmatch(value)
    }
    assert unsafe == set()


def test_probed_queries_are_labelled_by_id_never_by_text(
    database: ConnInfo, metrics_server: metrics.MetricsServer
) -> None:
    with psycopg.connect(database.dsn(), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute(f"SELECT pg_sleep(0.05), '{_SECRET}' AS token")
    health = probe_database(database)
    assert health.top_queries, "the probe found no statements to export"
    metrics.set_database_health("health", "probed", health)

    samples = scrape(metrics_server)
    top = [s for s in samples if s.name == "dbkeeper_database_top_query_mean_seconds"]
    assert {s.labels["queryid"] for s in top if s.labels["name"] == "probed"} == {
        str(q.queryid) for q in health.top_queries
    }
    assert database.password is not None
    for sample in samples:
        for value in sample.labels.values():
            assert _SECRET not in value
            assert database.password not in value
            assert "select" not in value.lower()
    metrics.forget_resource("health", "probed")
