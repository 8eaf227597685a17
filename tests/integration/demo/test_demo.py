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
from dbkeeper.demo.folder import server_folder_for
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


def _demo_in(mode: int) -> Iterator[Path]:
    parent = Path(tempfile.mkdtemp(prefix="dbkeeper-demo-test-", dir="/tmp"))
    parent.chmod(mode)
    demo = parent / "demo"
    try:
        yield demo
    finally:
        if demo.exists() or server_folder_for(demo).exists():
            _run([DBKEEPER, "demo", "down"], demo)
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
def demo_dir() -> Iterator[Path]:
    """In a folder the server's user (postgres, when the tests run as root) can enter."""
    yield from _demo_in(0o755)


@pytest.fixture
def private_demo_dir() -> Iterator[Path]:
    """In a 0700 folder, as a checkout under root's home is."""
    yield from _demo_in(0o700)


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
    first_table = re.search(rf"clinic\s+Ready\s+{head}\s+head\s+(\S+)", out)
    assert first_table is not None
    assert first_table.group(1) != "<none>", "the backup taken before the move is the last"
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


_TRY_IT = """
set -e
. "$1/env"
dbkeeper status -o json
dbkeeper backup list -o json
dbkeeper types typescript --out "$2/schema.ts"
python -c "import psycopg; print(psycopg.connect('').execute('SELECT 1').fetchone()[0])"
"""


@pytest.mark.skipif(MAKE is None, reason="make is not installed")
def test_make_demo_from_a_private_folder_then_make_demo_down_removes_everything(
    private_demo_dir: Path, tmp_path: Path
) -> None:
    """`make demo` in a checkout under a 0700 home: the server's files go where its user
    can reach them, the printed next steps work without typing a password, and
    `make demo-down` removes both folders."""
    assert MAKE is not None
    demo = private_demo_dir
    server_folder = server_folder_for(demo)
    # -o: never reinstall the shared virtualenv from a test, even when its stamp is stale.
    stamp = ["-o", ".venv/.installed"]

    up = _run([MAKE, *stamp, "demo"], demo, timeout=300)
    assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
    assert "Stop and remove everything with `make demo-down`" in up.stdout
    if os.geteuid() == 0:  # as root the server runs as postgres, which cannot enter demo
        assert f"the server's files in {server_folder}" in up.stdout
        assert (server_folder / "postgres").is_dir()
        assert not (demo / "postgres").exists()
    assert f". {demo / 'env'}" in up.stdout
    assert _owner(demo)[1] not in up.stdout + up.stderr
    assert oct((demo / "pgpass").stat().st_mode & 0o777) == "0o600"
    server_port, pooler_port = _ports(demo)
    assert _listening(server_port)
    assert _listening(pooler_port)

    types_folder = tmp_path
    tried = subprocess.run(
        ["bash", "-c", _TRY_IT, "try-it", str(demo), str(types_folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith(("PG", "DBKEEPER_"))},
    )
    assert tried.returncode == 0, tried.stderr
    decoder = json.JSONDecoder()
    status, end = decoder.raw_decode(tried.stdout)
    backups, _ = decoder.raw_decode(tried.stdout[end:].lstrip())
    assert status["current_revision"] == load_set("healthcare").head, status
    assert len(backups["backups"]) == 4
    assert tried.stdout.strip().endswith("1"), "psql's variables reach the pooler"
    module = (types_folder / "schema.ts").read_text(encoding="utf-8")
    head = load_set("healthcare").head
    assert head is not None
    assert f"at revision {head}," in module.split("\n", 1)[0], module[:400]
    assert "export const patients = pgTable(" in module

    down = _run([MAKE, *stamp, "demo-down"], demo)

    assert down.returncode == 0, down.stderr
    assert not demo.exists()
    assert not server_folder.exists()
    assert not _listening(server_port), "PostgreSQL still answers"
    assert not _listening(pooler_port), "pgbouncer still answers"


def test_demo_status_without_a_demo_names_the_fix(demo_dir: Path) -> None:
    result = _run([DBKEEPER, "demo", "status"], demo_dir)

    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"dbkeeper: error: no demo in {demo_dir}: start it with `make demo`"
    ]


def test_a_server_folder_planted_by_someone_else_is_refused(private_demo_dir: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root hands the server to another user")
    planted = server_folder_for(private_demo_dir)
    planted.mkdir(mode=0o777)
    planted.chmod(0o777)  # writable by anyone: not a folder the demo made
    try:
        result = _run([DBKEEPER, "demo", "up"], private_demo_dir)
    finally:
        planted.rmdir()

    assert result.returncode != 0
    (line,) = result.stderr.splitlines()
    assert f"{planted} is not a folder this demo made" in line
    assert not private_demo_dir.exists()
