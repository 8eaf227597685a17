"""Long commands show progress: a bar on a terminal (here a pseudo-terminal), nothing
extra in a pipe for a short run, and no bar left over when the command fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg

from dbkeeper.backup.catalog import BackupCatalog
from dbkeeper.conninfo import ConnInfo
from tests.cli_output import json_output
from tests.terminal import on_a_terminal


def _on_a_terminal(info: ConnInfo, *args: str) -> tuple[int, str, str]:
    """``dbkeeper ARGS`` with stderr on a pseudo-terminal: (exit code, stdout, terminal)."""
    return on_a_terminal(args, {"DBKEEPER_DSN": info.dsn()})


def test_seed_draws_a_bar_of_patients_on_a_terminal(healthcare_db: ConnInfo) -> None:
    code, stdout, terminal = _on_a_terminal(healthcare_db, "seed", "--patients", "3000")

    assert code == 0, terminal
    assert "seed:" in terminal
    assert "3000/3000" in terminal
    assert "patients" in terminal
    assert "\r" in terminal, "the bar redraws in place"
    assert "seeded" in stdout  # the result stays on stdout


def test_backup_create_and_verify_count_tables_on_a_terminal(
    healthcare_db: ConnInfo, tmp_path: Path
) -> None:
    destination = str(tmp_path / "backups")

    code, stdout, dumped = _on_a_terminal(
        healthcare_db, "backup", "create", "--destination", destination
    )
    assert code == 0, dumped
    newest = BackupCatalog(Path(destination)).newest()
    assert newest is not None
    tables = len(newest.row_counts)
    assert tables > 10  # the healthcare schema, its audit log and the bookkeeping
    assert "backup create: dumping" in dumped
    assert f"{tables}/{tables}" in dumped, dumped
    assert "tables/s" in dumped

    code, stdout, drilled = _on_a_terminal(
        healthcare_db, "backup", "verify", newest.id, "--destination", destination
    )
    assert code == 0, drilled
    assert f"{tables}/{tables}" in drilled, drilled
    assert "passed" in stdout


def test_audit_verify_counts_rows_on_a_terminal(healthcare_db: ConnInfo) -> None:
    code, _, _ = _on_a_terminal(healthcare_db, "seed", "--patients", "200")
    assert code == 0
    with psycopg.connect(healthcare_db.dsn()) as conn:
        counted = conn.execute("SELECT count(*) FROM audit.log").fetchone()
    assert counted is not None
    rows = int(counted[0])
    assert rows > 200

    code, stdout, terminal = _on_a_terminal(healthcare_db, "audit", "verify")

    assert code == 0, terminal
    assert f"{rows}/{rows}" in terminal, terminal
    assert "rows/s" in terminal
    assert "audit chain intact" in stdout, stdout


def test_seed_in_a_pipe_prints_only_its_result(healthcare_db: ConnInfo) -> None:
    env = {**os.environ, "DBKEEPER_DSN": healthcare_db.dsn()}
    done = subprocess.run(
        [sys.executable, "-m", "dbkeeper.cli", "seed", "--patients", "50", "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert json_output(done.args, done.stdout)["patients"] == 50
    # Plain progress lines come only every 30 s of work: a short run has none.
    assert [line for line in done.stderr.splitlines() if line.startswith("progress:")] == []


def test_a_failing_command_leaves_one_error_line_and_no_bar(healthcare_db: ConnInfo) -> None:
    broken = ConnInfo(healthcare_db.host, healthcare_db.port, "no_such_db", healthcare_db.user)

    code, _, terminal = _on_a_terminal(broken, "backup", "create", "--destination", "/tmp")

    assert code == 1
    lines = [line for line in terminal.replace("\r", "\n").splitlines() if line.strip()]
    assert lines[-1].startswith("dbkeeper: error: backup of"), terminal
