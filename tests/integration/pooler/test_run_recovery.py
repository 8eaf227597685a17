"""``dbkeeper pooler run`` recovers: pgbouncer restarted when it dies, never left behind,
and never started on a port something else holds.

Each test runs the CLI as a subprocess on a real pgbouncer and kills processes with
SIGKILL, the way a crash or the OOM killer would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from dbkeeper.conninfo import ConnInfo
from dbkeeper.local.postgres import free_port
from tests.integration.pooler.conftest import (
    StartPooler,
    children_named,
    dbkeeper_command,
    port_free,
    process_gone,
)
from tests.waiting import wait_for

ENV = {"PATH": "/usr/bin:/bin:/usr/sbin"}


class PoolerRun:
    """A running ``dbkeeper pooler run``, its stderr in a file the test can read."""

    def __init__(self, database: ConnInfo, folder: Path) -> None:
        self.database = database
        self.port = free_port()
        self.stderr_path = folder.parent / "stderr.txt"
        self.pgbouncers: set[int] = set()
        with self.stderr_path.open("w") as stderr:
            self.process = subprocess.Popen(
                dbkeeper_command(
                    "pooler", "run", "--listen-port", str(self.port), "--dir", str(folder)
                ),
                env={**ENV, "DBKEEPER_DSN": database.dsn()},
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        self.client_dsn = ""

    def wait_listening(self) -> None:
        assert self.process.stdout is not None
        first_line = self.process.stdout.readline()
        assert "pooler listening" in first_line, self.stderr()
        self.client_dsn = first_line.split("connect with: ", 1)[1].strip()

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def pgbouncer_pid(self) -> int | None:
        """The pgbouncer now running under the CLI, if any."""
        found = children_named(self.process.pid, "pgbouncer")
        self.pgbouncers.update(found)
        return found[0] if found else None

    def serves_queries(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(
                f"pooler run exited with {self.process.returncode}: {self.stderr()}"
            )
        try:
            with psycopg.connect(
                self.client_dsn, password=self.database.password, prepare_threshold=None
            ) as conn:
                return conn.execute("SELECT current_database()").fetchone() == (
                    self.database.dbname,
                )
        except psycopg.OperationalError:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)
        # A pgbouncer that outlived its supervisor must not outlive the test too.
        for pid in self.pgbouncers:
            if not process_gone(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


@pytest.fixture
def pooler_run(database: ConnInfo, pooler_dir: Path) -> Iterator[PoolerRun]:
    run = PoolerRun(database, pooler_dir)
    try:
        run.wait_listening()
        yield run
    finally:
        run.stop()


def test_pgbouncer_killed_under_pooler_run_is_restarted_and_serves_again(
    pooler_run: PoolerRun,
) -> None:
    assert pooler_run.serves_queries()
    first = pooler_run.pgbouncer_pid()
    assert first is not None

    os.kill(first, signal.SIGKILL)

    wait_for(pooler_run.serves_queries, 60, "queries through the restarted pgbouncer")
    assert pooler_run.pgbouncer_pid() not in (None, first)
    died = [line for line in pooler_run.stderr().splitlines() if "SIGKILL" in line]
    assert len(died) == 1, pooler_run.stderr()
    assert "restarting it in" in died[0]


def test_pgbouncer_does_not_outlive_a_pooler_run_killed_with_sigkill(
    pooler_run: PoolerRun,
) -> None:
    pgbouncer = pooler_run.pgbouncer_pid()
    assert pgbouncer is not None

    pooler_run.process.kill()
    pooler_run.process.wait(30)

    wait_for(lambda: process_gone(pgbouncer), 30, "pgbouncer to go with its supervisor")
    wait_for(lambda: port_free(pooler_run.port), 30, f"port {pooler_run.port} to be free")


def test_pooler_run_refuses_a_port_already_in_use_in_one_line(
    database: ConnInfo, pooler_dir: Path, start_pooler: StartPooler
) -> None:
    # A real pgbouncer holds the port, as one left behind by an earlier run would.
    holder = start_pooler()
    result = subprocess.run(
        dbkeeper_command(
            "pooler", "run", "--listen-port", str(holder.port), "--dir", str(pooler_dir)
        ),
        env={**ENV, "DBKEEPER_DSN": database.dsn()},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "pooler listening" not in result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert f"port {holder.port}" in lines[0]
    assert "--listen-port" in lines[0]
    assert database.password is not None
    assert database.password not in result.stderr
    assert holder.is_running()
