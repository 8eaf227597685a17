"""Checksum drift: a revision file edited after it was applied is reported, not hidden."""

from __future__ import annotations

from pathlib import Path

import psycopg

from dbkeeper.conninfo import ConnInfo
from dbkeeper.migrate import MigrationEvent, MigrationOptions, load_set, migrate, read_status


def _edit(set_root: Path, revision_file: str) -> None:
    path = set_root / "toy" / "versions" / revision_file
    path.write_text(path.read_text() + "\n# edited after it was applied\n")


def test_editing_an_applied_revision_is_reported_as_drift(
    database: ConnInfo, copied_sets: Path
) -> None:
    applied = load_set("toy", copied_sets)
    migrate(database, applied, MigrationOptions(target="0003"))

    _edit(copied_sets, "0002_add_price.py")
    edited = load_set("toy", copied_sets)
    status = read_status(database, edited)

    assert [item.revision for item in status.drift] == ["0002"]
    assert status.drift[0].recorded == applied.revision("0002").checksum
    assert status.drift[0].current == edited.revision("0002").checksum


def test_editing_a_pending_revision_is_not_drift(database: ConnInfo, copied_sets: Path) -> None:
    migrate(database, load_set("toy", copied_sets), MigrationOptions(target="0002"))

    _edit(copied_sets, "0003_create_orders.py")
    status = read_status(database, load_set("toy", copied_sets))

    assert status.drift == []
    assert status.pending == ["0003", "0004"]


def test_migrate_announces_drift_as_an_event(database: ConnInfo, copied_sets: Path) -> None:
    migrate(database, load_set("toy", copied_sets), MigrationOptions(target="0002"))
    _edit(copied_sets, "0001_create_items.py")
    events: list[MigrationEvent] = []

    migrate(database, load_set("toy", copied_sets), MigrationOptions(), on_event=events.append)

    drift = [event for event in events if event.kind == "drift_found"]
    assert [event.revision for event in drift] == ["0001"]


def test_revision_changed_outside_dbkeeper_is_an_unknown_current(
    database: ConnInfo, copied_sets: Path
) -> None:
    toy = load_set("toy", copied_sets)
    migrate(database, toy, MigrationOptions(target="0002"))
    with psycopg.connect(database.dsn(), autocommit=True) as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'f00d'")

    status = read_status(database, toy)

    assert status.unknown_current
    assert status.current_revision == "f00d"
    assert not status.up_to_date
