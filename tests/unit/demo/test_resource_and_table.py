"""The demo's resource bookkeeping and the status table it prints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dbkeeper.api import parse_manifest
from dbkeeper.demo.folder import DemoError, DemoFolder, check_traversable
from dbkeeper.demo.resource import apply_resource, load_example, localized, with_target
from dbkeeper.demo.status_table import age, resource_table
from dbkeeper.local.service_user import ServiceUser

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def _local(tmp_path: Path) -> dict[str, object]:
    return localized(load_example(), port=54321, backups=tmp_path / "backups", pooler_port=6500)


def test_the_example_is_pointed_at_the_local_server_and_folder(tmp_path: Path) -> None:
    spec = parse_manifest(_local(tmp_path)).spec

    assert (spec.database.host, spec.database.port, spec.database.ssl_mode) == (
        "127.0.0.1",
        54321,
        "disable",
    )
    assert spec.backup is not None
    assert spec.backup.destination.directory == str(tmp_path / "backups")
    assert spec.backup.destination.persistent_volume_claim is None
    assert spec.pooler.port == 6500


def test_the_generation_grows_only_when_the_spec_changes(tmp_path: Path) -> None:
    folder = DemoFolder(tmp_path)
    local = _local(tmp_path)

    first = apply_resource(folder, local, NOW)
    again = apply_resource(folder, local, NOW + timedelta(minutes=1))
    rolled_back = apply_resource(folder, with_target(local, "0005", True), NOW)

    assert (first.generation, again.generation, rolled_back.generation) == (1, 1, 2)
    assert rolled_back.created == NOW


def test_age_reads_like_kubectl() -> None:
    assert [
        age(NOW - timedelta(seconds=s), NOW) for s in (5, 125, 3 * 3600 + 5, 2 * 86400 + 60)
    ] == ["5s", "2m", "3h", "2d"]
    assert age(None, NOW) == "<none>"


def test_the_status_table_has_the_printer_columns() -> None:
    status = {
        "phase": "Ready",
        "currentRevision": "0006",
        "lastBackup": {"id": "b", "finishedAt": "2026-03-01T11:59:00Z"},
    }
    lines = resource_table("clinic", "head", NOW - timedelta(hours=1), status, NOW).splitlines()

    assert lines[0].split() == ["NAME", "PHASE", "CURRENT", "TARGET", "LAST", "BACKUP", "AGE"]
    assert lines[1].split() == ["clinic", "Ready", "0006", "head", "1m", "1h"]


def test_a_folder_the_service_user_cannot_enter_is_refused(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    stranger = ServiceUser(
        uid=closed.stat().st_uid + 4242, gid=closed.stat().st_gid + 4242, name="x"
    )

    with pytest.raises(DemoError, match=f"cannot enter {closed}.*DBKEEPER_DEMO_DIR"):
        check_traversable(closed / "demo", stranger)
