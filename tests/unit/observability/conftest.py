"""Where the observability files live, and promtool to check them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from dbkeeper.paths import source_root

CHART_FILES = source_root() / "charts" / "dbkeeper" / "files"
RULES_FILE = CHART_FILES / "prometheus-rules.yaml"
DASHBOARD_FILE = CHART_FILES / "grafana-dashboard.json"
ALERT_TESTS_FILE = Path(__file__).parent / "alerts_test.yaml"
RUNBOOK_FILE = source_root() / "docs" / "runbook.md"
METRICS_DOC_FILE = source_root() / "docs" / "metrics.md"


def run_promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed: run `make system-deps` (package prometheus)")
    return subprocess.run(
        [promtool, *args], capture_output=True, text=True, timeout=60, cwd=cwd, check=False
    )


def load_alert_rules(path: Path = RULES_FILE) -> list[dict[str, Any]]:
    document = yaml.safe_load(path.read_text())
    return [rule for group in document["groups"] for rule in group["rules"] if "alert" in rule]
