"""`dbkeeper operator` as users run it: its own process, settings from the environment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from dbkeeper.local.postgres import free_port
from dbkeeper.migrate import load_set
from tests.k8s.harness import Cluster
from tests.k8s.scenarios.conftest import (
    OwnedDatabase,
    schema_manifest,
    secret_manifest,
    wait_for_phase,
)
from tests.waiting import wait_for

DBKEEPER = Path(sys.executable).with_name("dbkeeper")


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


def test_the_operator_command_reconciles_and_serves_health_and_metrics(
    k8s_cluster: Cluster, owned_database: OwnedDatabase, tmp_path: Path
) -> None:
    metrics_port, health_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DBKEEPER_")},
        "KUBECONFIG": str(k8s_cluster.operator_kubeconfig or k8s_cluster.kubeconfig_path),
        "DBKEEPER_METRICS_PORT": str(metrics_port),
        "DBKEEPER_HEALTH_PORT": str(health_port),
        "DBKEEPER_RECHECK_INTERVAL": "2s",
        "DBKEEPER_LOG_FORMAT": "json",
        "DBKEEPER_NAMESPACES": "proc",
    }
    k8s_cluster.ensure_namespace("proc")
    k8s_cluster.create(
        secret_manifest("proc", "app-owner", owned_database.username, owned_database.password)
    )
    log_path = tmp_path / "operator.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(DBKEEPER), "operator"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            k8s_cluster.create(schema_manifest("proc", "app", owned_database, "app-owner"))
            status = wait_for_phase(k8s_cluster, "proc", "app", "Ready", timeout=90)
            health = _get(f"http://127.0.0.1:{health_port}/healthz")
            ready_line = 'dbkeeper_resource_phase{name="app",namespace="proc",phase="Ready"} 1.0'

            # The gauges follow the status write, so they may trail what the API shows.
            def ready_published() -> str | None:
                text = _get(f"http://127.0.0.1:{metrics_port}/metrics")[1]
                return text if ready_line in text else None

            metrics = wait_for(ready_published, what="the Ready phase gauge")
        finally:
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=30)
    assert status["currentRevision"] == load_set("healthcare").head
    assert health[0] == 200
    assert ready_line in metrics
    text = log_path.read_text()
    lines = text.splitlines()
    assert lines, "no log lines"
    not_json = [line for line in lines if not line.startswith("{")]
    assert not_json == [], "every line is one JSON record (no logging errors, no tracebacks)"
    records = [json.loads(line) for line in lines]
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    # A clean run and a clean shutdown: the only warnings are the Warning Events (the
    # healthcare set's lint findings), nothing from the machinery.
    warnings = [r for r in records if r["level"] in ("WARNING", "ERROR", "CRITICAL")]
    assert [r for r in warnings if r["logger"] != "dbkeeper.reconcile.kube_runtime"] == []
    # One line per meaningful step: the Events, with the resource they are about.
    applied = [r for r in records if r["message"].startswith("proc/app RevisionApplied:")]
    assert applied, records
    assert all(r["level"] == "INFO" for r in applied), applied
    # Library routine only at DEBUG.
    assert not any(r["message"].endswith("' succeeded.") for r in records)
    assert not any(r["message"].startswith("Context impl") for r in records)
    assert not any(r["logger"] == "aiohttp.access" for r in records)
    assert owned_database.password not in text
    assert code == 0
