"""What ``-o json`` prints is the shape its parser declares, for the commands that need
no database: backup list and prune on a folder, plan, lint and migrate describe offline.

The commands that need a database are held to their shapes by their integration tests
(through ``tests.cli_output.json_output``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dbkeeper.backup.catalog import BackupCatalog
from dbkeeper.backup.manifest import BackupManifest
from dbkeeper.cli import main
from tests.cli_output import error_lines, json_output

SETS_ROOT = Path(__file__).resolve().parents[2] / "fixtures" / "migration_sets"
T0 = datetime(2026, 11, 1, tzinfo=UTC)
CHECKPOINT = {
    "format": "dbkeeper-audit-checkpoint-v1",
    "batch": 3,
    "rows": 40,
    "head": "ab" * 32,
    "time": "2026-11-01T00:00:00Z",
    "keyId": "0123456789abcdef",
    "signature": "c2lnbmVk",
}

Run = Callable[..., tuple[int, Any]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """``dbkeeper ARGS -o json`` in-process: its exit code and its object, checked."""
    for name in [n for n in os.environ if n.startswith("DBKEEPER_")]:
        monkeypatch.delenv(name)

    def run(*args: str) -> tuple[int, Any]:
        capsys.readouterr()
        code = main([*args, "-o", "json"])
        return code, json_output(args, capsys.readouterr().out)

    return run


def _manifest(backup_id: str, hours: int, **fields: Any) -> BackupManifest:
    return BackupManifest(
        id=backup_id,
        created_at=T0 + timedelta(hours=hours),
        finished_at=T0 + timedelta(hours=hours, minutes=1),
        database="clinic",
        schema_revision="0001",
        server_version="15.8",
        format="directory",
        size_bytes=1024,
        duration_s=1.5,
        files={"dump/toc.dat": "0" * 64},
        row_counts={"patients": 3},
        **fields,
    )


@pytest.fixture
def destination(tmp_path: Path) -> Path:
    """A folder with a drilled backup, a new one, an unfinished one and a stray folder."""
    catalog = BackupCatalog(tmp_path)
    catalog.write(
        _manifest(
            "a-drilled",
            1,
            verified_at=T0 + timedelta(hours=2),
            verify_duration_s=3.0,
            verify_result="passed",
            verify_message="all checks passed",
            audit_checkpoint=CHECKPOINT,
        )
    )
    catalog.write(_manifest("b-new", 5))
    catalog.start("c-unfinished")
    (tmp_path / "d-stray").mkdir()
    return tmp_path


def test_backup_list(run: Run, destination: Path) -> None:
    code, listing = run("backup", "list", "--destination", str(destination))

    assert code == 0
    assert [backup["id"] for backup in listing["backups"]] == ["a-drilled", "b-new"]
    assert listing["backups"][0]["audit_checkpoint"] == CHECKPOINT
    assert listing["incomplete"] == ["c-unfinished"]
    assert [folder["id"] for folder in listing["unreadable"]] == ["d-stray"]


def test_backup_prune(run: Run, destination: Path) -> None:
    code, pruned = run("backup", "prune", "--keep-last", "1", "--destination", str(destination))

    assert code == 0
    assert pruned["removed"] == []  # the newest and the newest drilled one always stay
    assert [folder["id"] for folder in pruned["kept_unreadable"]] == ["d-stray"]


def test_plan_offline(run: Run) -> None:
    code, plan = run("plan", "--set", "unsafe_index", "--migrations-dir", str(SETS_ROOT))

    assert code == 0
    assert [step["revision"] for step in plan["steps"]] == ["0001", "0002"]
    assert plan["steps"][1]["findings"]


def test_migrate_describe(run: Run) -> None:
    code, described = run("migrate", "describe", "--set", "toy", "--migrations-dir", str(SETS_ROOT))

    assert code == 0
    assert described["set"] == "toy"


def test_lint_of_the_steps_to_the_target(run: Run) -> None:
    code, linted = run("lint", "--set", "unsafe_index", "--migrations-dir", str(SETS_ROOT))

    assert code == 1
    assert linted["clean"] is False
    assert [item["revision"] for item in linted["results"]] == ["0001", "0002"]


def test_lint_of_files(run: Run, tmp_path: Path) -> None:
    risky, safe = tmp_path / "risky.sql", tmp_path / "safe.sql"
    risky.write_text("CREATE INDEX items_name_idx ON items (name);\n")
    safe.write_text("SELECT 1;\n")

    code, linted = run("lint", str(risky), str(safe))

    assert code == 1
    assert [bool(item["findings"]) for item in linted["results"]] == [True, False]


def test_types_refuses_json_without_a_file_to_describe(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["types", "typescript", "-o", "json"])

    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert error_lines(captured.err) == [
        "dbkeeper: error: -o json describes the file written or checked: add --out FILE or "
        "--check FILE"
    ]
