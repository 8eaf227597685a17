"""``dbkeeper pooler run`` serves a real pgbouncer; ``pooler show`` reads its pools."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import psycopg
import pytest

from dbkeeper.conninfo import ConnInfo
from dbkeeper.local.postgres import free_port
from tests.cli_output import json_output
from tests.integration.pooler.conftest import dbkeeper_command as _dbkeeper


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("sigint_ignored", [False, True], ids=["plain", "sigint-inherited-ignored"])
def test_pooler_run_serves_queries_and_show_reports_the_pool(
    database: ConnInfo, pooler_dir: Path, sigint_ignored: bool
) -> None:
    """Ctrl-C (SIGINT) stops it, also when it was started with SIGINT ignored, as a shell
    without job control starts background jobs."""
    port = free_port()
    process = subprocess.Popen(
        _dbkeeper(
            "pooler",
            "run",
            "--listen-port",
            str(port),
            "--default-pool-size",
            "3",
            "--dir",
            str(pooler_dir),
        ),
        env={"DBKEEPER_DSN": database.dsn(), "PATH": "/usr/bin:/bin:/usr/sbin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ignore_sigint if sigint_ignored else None,
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        assert f"port={port}" in first_line, first_line + (
            process.stderr.read() if process.stderr else ""
        )
        assert database.password is not None
        assert database.password not in first_line
        client_dsn = first_line.split("connect with: ", 1)[1].strip()
        with psycopg.connect(
            client_dsn, password=database.password, prepare_threshold=None
        ) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (database.dbname,)
        shown = subprocess.run(
            _dbkeeper("pooler", "show", "--dir", str(pooler_dir), "-o", "json"),
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        report = json_output(shown.args, shown.stdout)
        assert [p["database"] for p in report["pools"]] == [database.dbname]
        assert report["stats"][0]["total_query_count"] >= 1
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()  # leave no pooler behind for the other tests
            process.wait(60)
            raise
    assert code == 0


def test_pooler_run_rejects_an_out_of_range_pool_size(database: ConnInfo, pooler_dir: Path) -> None:
    result = subprocess.run(
        _dbkeeper("pooler", "run", "--default-pool-size", "0", "--dir", str(pooler_dir)),
        env={"DBKEEPER_DSN": database.dsn(), "PATH": "/usr/bin:/bin:/usr/sbin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "default_pool_size" in result.stderr
    assert not pooler_dir.exists()
