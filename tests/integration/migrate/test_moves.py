"""Moving a database up and down a migration set: targets, consent, unknown revisions."""

from __future__ import annotations

import pytest

from dbkeeper.conninfo import ConnInfo
from dbkeeper.migrate import MigrationError, MigrationEvent, MigrationOptions, MigrationSet, migrate
from tests.integration.migrate.conftest import Peek


def test_upgrade_to_head_applies_every_revision_in_order(
    database: ConnInfo, toy: MigrationSet, peek: Peek
) -> None:
    result = migrate(database, toy, MigrationOptions(target="head"))

    assert (result.from_revision, result.to_revision) == (None, toy.head)
    assert peek.revision() == toy.head
    assert peek.tables() == {"items", "orders"}
    assert "label" in peek.columns("items")
    assert peek.value("SELECT count(*) FROM orders") == 3
    assert [row[0] for row in peek.history("succeeded")] == toy.ids


def test_downgrade_without_consent_is_refused_and_changes_nothing(
    database: ConnInfo, toy: MigrationSet, peek: Peek
) -> None:
    migrate(database, toy, MigrationOptions(target="head"))
    history_before = peek.history()

    with pytest.raises(MigrationError) as caught:
        migrate(database, toy, MigrationOptions(target="0002"))

    assert caught.value.reason == "DowngradeNotAllowed"
    assert "allowDowngrade" in str(caught.value)
    assert peek.revision() == "0004"
    assert peek.history() == history_before


def test_downgrade_with_consent_reverts_down_to_the_target(
    database: ConnInfo, toy: MigrationSet, peek: Peek
) -> None:
    migrate(database, toy, MigrationOptions(target="head"))

    result = migrate(database, toy, MigrationOptions(target="0002", allow_downgrade=True))

    assert [step.revision for step in result.steps] == ["0004", "0003"]
    assert peek.revision() == "0002"
    assert peek.tables() == {"items"}
    assert {"name", "price_cents"} <= peek.columns("items")
    reverted = [row[0] for row in peek.history() if row[1] == "downgrade"]
    assert reverted == ["0004", "0003"]


def test_downgrade_to_base_leaves_an_empty_schema(
    database: ConnInfo, toy: MigrationSet, peek: Peek
) -> None:
    migrate(database, toy, MigrationOptions(target="0002"))

    migrate(database, toy, MigrationOptions(target="base", allow_downgrade=True))

    assert peek.revision() is None
    assert peek.tables() == set()


@pytest.mark.parametrize(
    ("start", "target", "expected"),
    [("0002", "+1", "0003"), ("0002", "+2", "0004"), ("0003", "-1", "0002"), ("0001", "-1", None)],
)
def test_relative_targets_count_from_the_current_revision(
    database: ConnInfo,
    toy: MigrationSet,
    peek: Peek,
    start: str,
    target: str,
    expected: str | None,
) -> None:
    migrate(database, toy, MigrationOptions(target=start))

    migrate(database, toy, MigrationOptions(target=target, allow_downgrade=True))

    assert peek.revision() == expected


@pytest.mark.parametrize("target", ["0009", "-3", "+3", "latest"])
def test_unknown_target_is_refused_with_the_known_ids_and_nothing_changes(
    database: ConnInfo, toy: MigrationSet, peek: Peek, target: str
) -> None:
    migrate(database, toy, MigrationOptions(target="0002"))
    history_before = peek.history()

    with pytest.raises(MigrationError) as caught:
        migrate(database, toy, MigrationOptions(target=target, allow_downgrade=True))

    assert caught.value.reason == "UnknownRevision"
    assert target in str(caught.value)
    assert "0001, 0002, 0003, 0004" in str(caught.value)
    assert peek.revision() == "0002"
    assert peek.history() == history_before


def test_migrating_at_the_target_is_a_no_op(
    database: ConnInfo, toy: MigrationSet, peek: Peek
) -> None:
    migrate(database, toy, MigrationOptions())
    events: list[MigrationEvent] = []

    result = migrate(database, toy, MigrationOptions(), on_event=events.append)

    assert result.steps == ()
    assert len(peek.history()) == 4
    assert [event.kind for event in events] == ["finished"]


def test_events_tell_each_step_in_sentences(database: ConnInfo, toy: MigrationSet) -> None:
    events: list[MigrationEvent] = []

    migrate(database, toy, MigrationOptions(target="0002"), on_event=events.append)

    assert [(e.kind, e.revision) for e in events] == [
        ("started", None),
        ("revision_applied", "0001"),
        ("revision_applied", "0002"),
        ("finished", None),
    ]
    assert all(e.message[0].isupper() and e.message.endswith(".") for e in events)


def test_unreachable_database_is_reported_without_the_password(
    database: ConnInfo, toy: MigrationSet
) -> None:
    wrong = ConnInfo(
        host=database.host,
        port=database.port,
        dbname=database.dbname,
        user=database.user,
        password="not-the-Secret-pw",
    )

    with pytest.raises(MigrationError) as caught:
        migrate(wrong, toy, MigrationOptions())

    assert caught.value.reason == "DatabaseUnreachable"
    assert caught.value.transient
    assert "not-the-Secret-pw" not in str(caught.value)
