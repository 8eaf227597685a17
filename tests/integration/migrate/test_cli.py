"""``dbkeeper plan|migrate|status|history|lint`` end to end, as a user runs them.

The main flow runs the installed command in a subprocess; the other behaviours call the
same entry point in-process (``dbkeeper.cli.main``), which is much faster on a busy
machine and exercises the same code from argument parsing to exit code.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dbkeeper.cli import main
from dbkeeper.conninfo import ConnInfo
from dbkeeper.migrate import MigrationOptions, load_set, migrate
from tests.cli_output import json_output
from tests.integration.migrate.conftest import SETS_ROOT, Peek


def dbkeeper(
    *args: str, dsn: str | None = None, sets: Path = SETS_ROOT
) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "DBKEEPER_DSN"}
    env["DBKEEPER_MIGRATIONS_DIR"] = str(sets)
    if dsn is not None:
        env["DBKEEPER_DSN"] = dsn
    return subprocess.run(
        [sys.executable, "-m", "dbkeeper.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class InProcess:
    """Runs ``dbkeeper ARGS`` through ``dbkeeper.cli.main`` and captures both streams."""

    def __init__(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
        self.capsys = capsys
        monkeypatch.setenv("DBKEEPER_MIGRATIONS_DIR", str(SETS_ROOT))
        monkeypatch.delenv("DBKEEPER_DSN", raising=False)
        self.monkeypatch = monkeypatch

    def __call__(self, *args: str, dsn: str | None = None) -> subprocess.CompletedProcess[str]:
        if dsn is not None:
            self.monkeypatch.setenv("DBKEEPER_DSN", dsn)
        self.capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
        captured = self.capsys.readouterr()
        return subprocess.CompletedProcess(list(args), code, captured.out, captured.err)


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> InProcess:
    return InProcess(capsys, monkeypatch)


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json_output(result.args, result.stdout)


def test_migrate_then_status_and_history_as_json(database: ConnInfo, peek: Peek) -> None:
    dsn = database.dsn()

    moved = as_json(dbkeeper("migrate", "--set", "toy", "--target", "0003", "-o", "json", dsn=dsn))
    status = as_json(dbkeeper("status", "--set", "toy", "-o", "json", dsn=dsn))
    history = as_json(dbkeeper("history", "-o", "json", dsn=dsn))

    assert [step["revision"] for step in moved["steps"]] == ["0001", "0002", "0003"]
    assert status["current_revision"] == "0003"
    assert status["head_revision"] == "0004"
    assert status["pending"] == ["0004"]
    assert status["drift"] == []
    assert [entry["revision"] for entry in history["entries"]] == ["0003", "0002", "0001"]
    assert {entry["outcome"] for entry in history["entries"]} == {"succeeded"}
    assert peek.revision() == "0003"


def test_migrate_text_output_tells_what_happened(database: ConnInfo, run: InProcess) -> None:
    result = run("migrate", "--set", "toy", "--target", "0001", dsn=database.dsn())

    assert result.returncode == 0, result.stderr
    assert "Applied revision 0001 (create items)" in result.stdout


def test_status_text_names_current_head_and_pending(database: ConnInfo, run: InProcess) -> None:
    run("migrate", "--set", "toy", "--target", "0002", dsn=database.dsn())

    result = run("status", "--set", "toy", dsn=database.dsn())

    assert result.returncode == 0, result.stderr
    assert "Current:   0002 (add price to items)" in result.stdout
    assert "Pending:   0003, 0004" in result.stdout


def test_refused_downgrade_exits_non_zero_with_one_line(database: ConnInfo, peek: Peek) -> None:
    migrate(database, load_set("toy", SETS_ROOT), MigrationOptions())

    result = dbkeeper("migrate", "--set", "toy", "--target", "-1", dsn=database.dsn())

    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("dbkeeper: error: ")
    assert "DowngradeNotAllowed" in lines[0]
    assert peek.revision() == "0004"


def test_allow_downgrade_flag_rolls_back(database: ConnInfo, peek: Peek, run: InProcess) -> None:
    run("migrate", "--set", "toy", dsn=database.dsn())

    result = run(
        "migrate", "--set", "toy", "--target", "-1", "--allow-downgrade", dsn=database.dsn()
    )

    assert result.returncode == 0, result.stderr
    assert peek.revision() == "0003"


def test_block_and_approve_flags(database: ConnInfo, peek: Peek, run: InProcess) -> None:
    blocked = run("migrate", "--set", "unsafe_index", "--lint", "block", dsn=database.dsn())
    approved = run(
        "migrate", "--set", "unsafe_index", "--lint", "block", "--approve", "0002",
        dsn=database.dsn(),
    )  # fmt: skip

    assert blocked.returncode != 0
    assert "LintBlocked" in blocked.stderr
    assert approved.returncode == 0, approved.stderr
    assert peek.revision() == "0002"


def test_plan_without_a_database_shows_sql_and_findings(run: InProcess) -> None:
    plan = as_json(run("plan", "--set", "unsafe_index", "-o", "json"))

    assert plan["from_revision"] is None
    assert [step["revision"] for step in plan["steps"]] == ["0001", "0002"]
    rules = [finding["rule"] for finding in plan["steps"][1]["findings"]]
    assert rules == ["require-concurrent-index-creation"]
    assert "CREATE INDEX" in plan["steps"][1]["sql"]


def test_lint_exits_non_zero_on_findings_and_zero_when_clean(
    tmp_path: Path, run: InProcess
) -> None:
    safe = tmp_path / "safe.sql"
    safe.write_text("CREATE INDEX CONCURRENTLY events_kind_idx ON events (kind);\n")

    flagged = run("lint", "--set", "unsafe_index")
    clean = run("lint", str(safe))

    assert flagged.returncode == 1
    assert "0002" in flagged.stderr
    assert clean.returncode == 0, clean.stderr


def test_bad_lock_timeout_is_a_usage_error(database: ConnInfo, run: InProcess) -> None:
    result = run("migrate", "--set", "toy", "--lock-timeout", "5 parsecs", dsn=database.dsn())

    assert result.returncode == 2
    assert "--lock-timeout" in result.stderr


def test_unknown_set_names_the_available_ones(database: ConnInfo, run: InProcess) -> None:
    result = run("status", "--set", "nope", dsn=database.dsn())

    assert result.returncode == 1
    assert "'nope'" in result.stderr
    assert "toy" in result.stderr


def test_wrong_password_is_never_shown(database: ConnInfo, run: InProcess) -> None:
    dsn = database.dsn().replace(f"password={database.password}", "password=Hunter2-secret")

    result = run("status", "--set", "toy", dsn=dsn)

    assert result.returncode == 1
    assert "DatabaseUnreachable" in result.stderr
    assert "Hunter2-secret" not in result.stderr + result.stdout
