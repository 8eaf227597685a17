"""The PromQL name finder used to check rules and dashboard against the exported metrics."""

from __future__ import annotations

import pytest

from tests.unit.observability.promql_names import grafana_to_promql, metric_names


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("dbkeeper_database_up == 0", {"dbkeeper_database_up"}),
        ('absent(dbkeeper_operator_info{version="x"})', {"dbkeeper_operator_info"}),
        (
            "sum by (namespace, name) (rate(a_total[5m])) / on(namespace) group_left(x) b",
            {"a_total", "b"},
        ),
        ("a > 0 unless on(namespace, name) b == 1", {"a", "b"}),
        ("(time() - a) > on(namespace, name) (1.5 * b)", {"a", "b"}),
        ("histogram_quantile(0.95, sum by (le) (rate(h_bucket[5m:1m])))", {"h_bucket"}),
        ("a offset 1h + 1e3 + 0x1f", {"a"}),
        ('topk(10, m{name=~"or|and", q="x(y)"})', {"m"}),
        ("ns:rule:rate5m", {"ns:rule:rate5m"}),
    ],
)
def test_finds_the_metrics_and_nothing_else(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_grafana_variables_become_plain_promql() -> None:
    promql = grafana_to_promql(
        'rate(a{namespace=~"$namespace", name=~"${name}"}[$__rate_interval])'
    )
    assert promql == 'rate(a{namespace=~"namespace", name=~"name"}[5m])'


def test_grafana_label_values_query_names_its_metric() -> None:
    assert metric_names('label_values(dbkeeper_x{namespace=~"$namespace"}, name)') == {"dbkeeper_x"}
