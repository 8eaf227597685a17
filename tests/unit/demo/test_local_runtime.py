"""The demo's runtime: Secrets, status and Events kept in local files."""

from __future__ import annotations

import io
import stat
from datetime import UTC, datetime
from pathlib import Path

from dbkeeper.api import parse_spec
from dbkeeper.conninfo import ConnInfo
from dbkeeper.demo.folder import DemoFolder
from dbkeeper.demo.local_runtime import LocalRuntime
from dbkeeper.reconcile.hooks import MoveSafeguards
from dbkeeper.reconcile.runtime import ResourceView
from dbkeeper.reconcile.status_patch import merge_patch

FIXED_NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def _view(status: dict[str, object] | None = None) -> ResourceView:
    return ResourceView("health", "clinic", 1, {}, status or {})


def _runtime(tmp_path: Path, out: io.StringIO | None = None) -> LocalRuntime:
    return LocalRuntime(DemoFolder(tmp_path), out=out or io.StringIO(), clock=lambda: FIXED_NOW)


def test_status_writes_merge_into_what_was_written_before(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path)
    runtime.write_status(_view(), {"phase": "Ready", "lastBackup": {"id": "b1"}})
    runtime.write_status(_view(), {"phase": "Migrating", "lastBackup": {"sizeBytes": 10}})

    assert DemoFolder(tmp_path).read_status() == {
        "phase": "Migrating",
        "lastBackup": {"id": "b1", "sizeBytes": 10},
    }


def test_a_null_in_a_status_write_removes_the_field(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path)
    runtime.write_status(_view(), {"phase": "Failed", "message": "boom"})
    runtime.write_status(_view(), {"phase": "Ready", "message": None})

    assert DemoFolder(tmp_path).read_status() == {"phase": "Ready"}


def test_merge_patch_leaves_its_input_unchanged() -> None:
    target = {"a": {"b": 1}}
    merge_patch(target, {"a": {"b": 2}})
    assert target == {"a": {"b": 1}}


def test_events_are_printed_and_appended_to_the_log(tmp_path: Path) -> None:
    out = io.StringIO()
    runtime = _runtime(tmp_path, out)
    runtime.event(_view(), "Normal", "RevisionApplied", "applied 0003")
    runtime.event(_view(), "Warning", "LockTimeout", "gave up on patients")

    log = (tmp_path / "events.log").read_text().splitlines()
    assert log == [
        "2026-03-01T12:00:00Z health/clinic Normal RevisionApplied applied 0003",
        "2026-03-01T12:00:00Z health/clinic Warning LockTimeout gave up on patients",
    ]
    printed = out.getvalue().splitlines()
    assert "RevisionApplied" in printed[0]
    assert "applied 0003" in printed[0]
    assert "Warning" in printed[1]
    assert "LockTimeout" in printed[1]


def test_an_event_never_shows_a_password(tmp_path: Path) -> None:
    out = io.StringIO()
    runtime = _runtime(tmp_path, out)
    runtime.event(_view(), "Warning", "DatabaseUnreachable", "failed: password=hunter22 host=x")

    assert "hunter22" not in out.getvalue()
    assert "hunter22" not in (tmp_path / "events.log").read_text()


def test_secrets_are_read_from_the_secrets_file(tmp_path: Path) -> None:
    folder = DemoFolder(tmp_path)
    created = folder.ensure_secret("clinic-owner", "clinic_owner")

    secret = _runtime(tmp_path).read_secret("health", "clinic-owner")

    assert secret == created
    assert secret is not None
    assert secret["username"] == "clinic_owner"
    assert secret["password"]
    assert _runtime(tmp_path).read_secret("health", "other") is None


def test_the_secrets_file_is_private_and_its_password_stable(tmp_path: Path) -> None:
    folder = DemoFolder(tmp_path)
    first = folder.ensure_secret("clinic-owner", "clinic_owner")
    second = folder.ensure_secret("clinic-owner", "clinic_owner")

    assert stat.S_IMODE(folder.secrets_file.stat().st_mode) == 0o600
    assert first == second


def _spec(with_backup: bool) -> dict[str, object]:
    spec: dict[str, object] = {
        "database": {"host": "127.0.0.1", "name": "clinic", "credentialsSecret": "clinic-owner"}
    }
    if with_backup:
        spec["backup"] = {"destination": {"directory": "/tmp/backups"}, "jobs": 3}
    return spec


CONN = ConnInfo("127.0.0.1", 5432, "clinic", "clinic_owner", "pw")
ADMIN = ConnInfo("127.0.0.1", 6432, "pgbouncer", "dbkeeper_admin", "adminpw")


def test_migration_hooks_back_up_to_the_directory_destination(tmp_path: Path) -> None:
    hooks = _runtime(tmp_path).migration_hooks(_view(), parse_spec(_spec(True)), CONN)

    assert hooks == MoveSafeguards(
        database=CONN, backup_destination=Path("/tmp/backups"), backup_jobs=3
    )


def test_migration_hooks_pause_the_pooler_once_it_runs(tmp_path: Path) -> None:
    runtime = LocalRuntime(DemoFolder(tmp_path), out=io.StringIO(), pooler_admin=lambda: ADMIN)

    hooks = runtime.migration_hooks(_view(), parse_spec(_spec(True)), CONN)

    assert hooks is not None
    assert [(p.admin, p.database) for p in hooks.poolers] == [(ADMIN, "clinic")]


def test_no_hooks_without_backup_destination_or_pooler(tmp_path: Path) -> None:
    assert _runtime(tmp_path).migration_hooks(_view(), parse_spec(_spec(False)), CONN) is None
