"""The alert rules: valid, unit-tested by promtool both ways, and ready for on-call."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.observability.conftest import (
    ALERT_TESTS_FILE,
    RULES_FILE,
    RUNBOOK_FILE,
    load_alert_rules,
    run_promtool,
)

EXPECTED_ALERTS = {
    "DatabaseDown",
    "MigrationFailed",
    "MigrationStuck",
    "SchemaDrift",
    "BackupMissing",
    "BackupTooOld",
    "BackupFailed",
    "RestoreDrillFailed",
    "RestoreDrillStale",
    "PoolerSaturated",
    "SlowQueries",
    "ConnectionsNearLimit",
    "OperatorDown",
    "ReconcileErrors",
    "DatabaseSchemaFailed",
    "DatabaseSchemaDegraded",
    "DatabaseSchemaPending",
    "RestoreDrillNotRun",
    "PoolerDown",
    "PoolerReplicasMissing",
    "AuditTrailBroken",
    "AuditSealLagging",
}


def _duration_seconds(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    parts = re.findall(r"(\d+)([smhd])", text)
    assert "".join(n + u for n, u in parts) == text, f"not a duration: {text}"
    return sum(int(n) * units[u] for n, u in parts)


def _cases(tests_file: Path) -> dict[str, dict[str, int]]:
    """Per alert: how many evaluations expect it firing and how many expect silence."""
    document = yaml.safe_load(tests_file.read_text())
    cases: dict[str, dict[str, int]] = {}
    for test in document["tests"]:
        for check in test.get("alert_rule_test", []):
            kind = "firing" if check.get("exp_alerts") else "quiet"
            counts = cases.setdefault(check["alertname"], {"firing": 0, "quiet": 0})
            counts[kind] += 1
    return cases


def _rewrite_exprs(tmp_path: Path, expr: str) -> Path:
    """A copy of the rules and the test file where every alert's expression is ``expr``."""
    rules: dict[str, Any] = yaml.safe_load(RULES_FILE.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule["expr"] = expr
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    tests: dict[str, Any] = yaml.safe_load(ALERT_TESTS_FILE.read_text())
    tests["rule_files"] = ["rules.yaml"]
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests))
    return tmp_path / "tests.yaml"


def test_rules_file_passes_promtool_check() -> None:
    result = run_promtool("check", "rules", str(RULES_FILE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(EXPECTED_ALERTS)} rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    result = run_promtool("test", "rules", ALERT_TESTS_FILE.name, cwd=ALERT_TESTS_FILE.parent)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_define_exactly_the_documented_alerts() -> None:
    names = [rule["alert"] for rule in load_alert_rules()]
    assert sorted(names) == sorted(EXPECTED_ALERTS)


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    cases = _cases(ALERT_TESTS_FILE)
    missing = {
        name: cases.get(name, {"firing": 0, "quiet": 0})
        for name in EXPECTED_ALERTS
        if cases.get(name, {}).get("firing", 0) < 1 or cases.get(name, {}).get("quiet", 0) < 1
    }
    assert not missing, f"alerts without a firing and a quiet promtool case: {missing}"


def test_alerts_that_never_fire_break_the_unit_tests(tmp_path: Path) -> None:
    tests_file = _rewrite_exprs(tmp_path, "vector(1) > 2")
    result = run_promtool("test", "rules", tests_file.name, cwd=tmp_path)
    assert result.returncode != 0
    not_caught = {
        a for a in EXPECTED_ALERTS if f"alertname: {a}," not in result.stdout + result.stderr
    }
    assert not not_caught, f"no firing case noticed these alerts never fire: {not_caught}"


def test_alerts_that_always_fire_break_the_unit_tests(tmp_path: Path) -> None:
    tests_file = _rewrite_exprs(tmp_path, "vector(1)")
    result = run_promtool("test", "rules", tests_file.name, cwd=tmp_path)
    assert result.returncode != 0
    not_caught = {
        a for a in EXPECTED_ALERTS if f"alertname: {a}," not in result.stdout + result.stderr
    }
    assert not not_caught, f"no quiet case noticed these alerts always fire: {not_caught}"


@pytest.mark.parametrize("rule", load_alert_rules(), ids=lambda rule: str(rule["alert"]))
def test_alert_is_actionable(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in {"critical", "warning"}
    annotations = rule["annotations"]
    assert annotations["summary"].strip()
    assert annotations["description"].strip()
    anchor = rule["alert"].lower()
    assert annotations["runbook_url"].endswith(f"docs/runbook.md#{anchor}")


@pytest.mark.parametrize("rule", load_alert_rules(), ids=lambda rule: str(rule["alert"]))
def test_alert_waits_before_firing(rule: dict[str, Any]) -> None:
    # A single scrape or probe must never page anyone.
    assert _duration_seconds(rule.get("for", "0s")) >= 60


@pytest.mark.parametrize("rule", load_alert_rules(), ids=lambda rule: str(rule["alert"]))
def test_runbook_has_a_section_for_the_alert(rule: dict[str, Any]) -> None:
    headings = re.findall(r"^## (\S+)\s*$", RUNBOOK_FILE.read_text(), flags=re.M)
    assert rule["alert"] in headings
