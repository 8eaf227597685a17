"""The Grafana dashboard: valid queries, the variables on-call filters by, every area shown."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.unit.observability.conftest import DASHBOARD_FILE, run_promtool
from tests.unit.observability.dashboard_queries import dashboard_queries, load_dashboard, panels
from tests.unit.observability.promql_names import grafana_to_promql


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    # promtool parses recording rules: one rule per dashboard query checks its syntax.
    queries = dashboard_queries(load_dashboard(DASHBOARD_FILE))
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query{i}", "expr": grafana_to_promql(q)}
                    for i, q in enumerate(queries)
                ],
            }
        ]
    }
    rules_file = tmp_path / "dashboard-rules.yaml"
    rules_file.write_text(yaml.safe_dump(rules))
    result = run_promtool("check", "rules", str(rules_file))
    assert result.returncode == 0, result.stdout + result.stderr


def test_has_datasource_namespace_and_name_variables() -> None:
    variables = {v["name"]: v for v in load_dashboard(DASHBOARD_FILE)["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["namespace"]["type"] == "query"
    assert "$namespace" in variables["name"]["query"]["query"]


def test_every_panel_uses_the_datasource_variable() -> None:
    for panel in panels(load_dashboard(DASHBOARD_FILE)):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def test_per_resource_queries_filter_by_namespace_and_name() -> None:
    for query in dashboard_queries(load_dashboard(DASHBOARD_FILE)):
        if "label_values" in query or "dbkeeper_operator" in query or "_process_" in query:
            continue
        if "dbkeeper_reconcile" in query:
            continue
        assert 'namespace=~"$namespace"' in query, query
        assert 'name=~"$name"' in query, query


def test_shows_every_area_on_call_looks_at() -> None:
    rows = [p["title"] for p in load_dashboard(DASHBOARD_FILE)["panels"] if p["type"] == "row"]
    assert rows == [
        "Operator",
        "Schema and migrations",
        "Backups",
        "Pooler",
        "Database",
        "Query latency",
        "Health: what keeps resources from Ready",
    ]


def test_panel_ids_are_unique_and_panels_do_not_overlap() -> None:
    all_panels = panels(load_dashboard(DASHBOARD_FILE))
    ids = [p["id"] for p in all_panels]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in all_panels:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps another panel"
                cells.add((x, y))
