"""``dbkeeper demo`` and ``make demo`` end to end: real PostgreSQL, pgbouncer, backups.

Each test gets its own demo folder under /tmp, reachable by the server's user, and
stops whatever it started even when it fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import yaml

from dbkeeper.backup.catalog import BackupCatalog
from dbkeeper.migrate import load_set
from dbkeeper.paths import source_root

DBKEEPER = str(Path(sys.executable).with_name("dbkeeper"))
MAKE = shutil.which("make")


# Each demo takes the pooler port 6432 (or the next free one) when it starts; two demos
# started at once on different workers could pick the same port, so they run in turn.
pytestmark = pytest.mark.xdist_group("demo")


def _run(args: list[str], demo: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DBKEEPER_DEMO_DIR": str(demo)}
    return subprocess.run(
        args,
        env=env,
        cwd=source_root(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture
def demo_dir() -> Iterator[Path]:
    parent = Path(tempfile.mkdtemp(prefix="dbkeeper-demo-test-", dir="/tmp"))
    parent.chmod(0o755)  # the server runs as the postgres user when tests run as root
    demo = parent / "demo"
    try:
        yield demo
    finally:
        if demo.exists():
            _run([DBKEEPER, "demo", "down"], demo)
        shutil.rmtree(parent, ignore_errors=True)


def _owner(demo: Path) -> tuple[str, str]:
    secret = json.loads((demo / "secrets.json").read_text())["clinic-owner"]
    return secret["username"], secret["password"]


def _ports(demo: Path) -> tuple[int, int]:
    resource = yaml.safe_load((demo / "resource.yaml").read_text())
    return int(resource["spec"]["database"]["port"]), int(resource["spec"]["pooler"]["port"])


def _patients(demo: Path) -> int:
    user, password = _owner(demo)
    server_port, _ = _ports(demo)
    with psycopg.connect(
        host="127.0.0.1", port=server_port, dbname="clinic", user=user, password=password
    ) as conn:
        row = conn.execute("SELECT count(*) FROM patients").fetchone()
    assert row is not None
    return int(row[0])


def _owner_attributes(demo: Path) -> tuple[bool, bool]:
    """(superuser, CREATEDB) of the demo's owner role: its drill runs as that role."""
    user, password = _owner(demo)
    server_port, _ = _ports(demo)
    with psycopg.connect(
        host="127.0.0.1", port=server_port, dbname="clinic", user=user, password=password
    ) as conn:
        row = conn.execute(
            "SELECT rolsuper, rolcreatedb FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
    assert row is not None
    return bool(row[0]), bool(row[1])


def test_first_demo_up_tours_everything_and_a_second_is_a_quick_no_op(demo_dir: Path) -> None:
    head = load_set("healthcare").head
    first = _run([DBKEEPER, "demo", "up"], demo_dir)
    assert first.returncode == 0, first.stderr
    out = first.stdout
    below = load_set("healthcare").ids[-2]

    assert re.search(rf"clinic\s+Ready\s+{head}\s+head", out), "Ready at head in the table"
    assert f"RevisionApplied    Applied revision {head}" in out
    assert re.search(rf"clinic\s+Ready\s+{below}\s+{below}", out), "status after the rollback"
    assert f"rolled back from {head} to {below}" in out
    assert f"and forward again: targetRevision: head ({head})" in out
    backup_ids = re.findall(r"backup taken before the move: (\S+)", out)
    assert len(backup_ids) == 3  # the first migration, the rollback and the forward move
    drilled = re.search(r"backup (\S+): .* KiB", out)
    assert drilled is not None
    assert "restore drill passed: restored as clinic_owner (CREATEDB)" in out
    assert _owner_attributes(demo_dir) == (False, True), "not a superuser, with CREATEDB"
    assert "audit chain: intact" in out
    catalog = BackupCatalog(demo_dir / "backups")
    assert {m.id for m in catalog.list()} == {*backup_ids, drilled.group(1)}
    assert catalog.read(drilled.group(1)).verify_result == "passed"
    patients = _patients(demo_dir)
    assert patients > 0
    _, pooler_port = _ports(demo_dir)
    assert f"SELECT count(*) FROM patients  ->  {patients}" in out
    assert f"host=127.0.0.1 port={pooler_port} dbname=clinic user=clinic_owner" in out
    assert _owner(demo_dir)[1] not in out + first.stderr

    second = _run([DBKEEPER, "demo", "up"], demo_dir)

    assert second.returncode == 0, second.stderr
    assert "Nothing needed doing" in second.stdout
    assert "event " not in second.stdout  # no migration ran
    assert len(catalog.list()) == 4  # no backup taken
    assert _patients(demo_dir) == patients  # nothing seeded twice


@pytest.mark.skipif(MAKE is None, reason="make is not installed")
def test_make_demo_then_make_demo_down_stops_and_removes_everything(demo_dir: Path) -> None:
    assert MAKE is not None
    # -o: never reinstall the shared virtualenv from a test, even when its stamp is stale.
    stamp = ["-o", ".venv/.installed"]

    up = _run([MAKE, *stamp, "demo"], demo_dir, timeout=300)
    assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
    assert "Stop and remove everything with `make demo-down`" in up.stdout
    server_port, pooler_port = _ports(demo_dir)
    assert _listening(server_port)
    assert _listening(pooler_port)

    down = _run([MAKE, *stamp, "demo-down"], demo_dir)

    assert down.returncode == 0, down.stderr
    assert not demo_dir.exists()
    assert not _listening(server_port), "PostgreSQL still answers"
    assert not _listening(pooler_port), "pgbouncer still answers"


def test_demo_status_without_a_demo_names_the_fix(demo_dir: Path) -> None:
    result = _run([DBKEEPER, "demo", "status"], demo_dir)

    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"dbkeeper: error: no demo in {demo_dir}: start it with `make demo`"
    ]


def test_a_demo_folder_the_server_cannot_reach_is_refused(demo_dir: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root hands the server to another user")
    closed = demo_dir.parent / "closed"
    closed.mkdir(mode=0o700)

    result = _run([DBKEEPER, "demo", "up"], closed / "demo")

    assert result.returncode != 0
    assert "cannot enter" in result.stderr
    assert "DBKEEPER_DEMO_DIR" in result.stderr
    assert list(closed.iterdir()) == []
