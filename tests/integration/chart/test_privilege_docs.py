"""Where a user sets up the owner role, they are told what it needs.

A restore drill creates a scratch database, so the owner role needs CREATEDB wherever
drills are scheduled; the install guide, the chart's notes, the examples that schedule
drills and the runbook say so, with the statement that grants it.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from dbkeeper.paths import source_root
from tests.integration.chart.rendering import CHART_DIR, RELEASE_NAMESPACE, run_helm

ROOT = source_root()
GRANT = "ALTER ROLE clinic_owner CREATEDB"


def test_the_chart_notes_say_the_owner_needs_createdb_for_drills(helm: Path) -> None:
    output = run_helm(
        helm, "install", "keeper", str(CHART_DIR), "--dry-run=client", "-n", RELEASE_NAMESPACE
    )
    notes = output.split("NOTES:", 1)[1]

    assert "CREATEDB" in notes
    assert "verifySchedule" in notes


def test_the_install_guide_creates_the_owner_with_createdb() -> None:
    text = (ROOT / "docs" / "install.md").read_text()

    assert "CREATEDB" in text
    assert "MissingPrivilege" in text
    assert "runbook.md#privileges" in text


def test_every_example_that_schedules_drills_says_the_owner_needs_createdb() -> None:
    drilled = [
        path
        for path in sorted((ROOT / "examples").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc and ((doc.get("spec") or {}).get("backup") or {}).get("verifySchedule")
    ]

    assert drilled, "an example schedules restore drills"
    for path in drilled:
        assert GRANT in path.read_text(), path.name


def test_the_runbook_lists_what_each_role_needs() -> None:
    text = (ROOT / "docs" / "runbook.md").read_text()
    section = text.split("\n## Privileges\n", 1)[1].split("\n## ", 1)[0]

    for need in ("CREATEDB", "CREATEROLE", "pg_signal_backend", "MissingPrivilege", GRANT):
        assert need in section, need
