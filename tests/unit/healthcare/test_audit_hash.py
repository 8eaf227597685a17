"""The canonical form of an audit row: every field counts, and field boundaries too."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dbkeeper.audit.canonical import epoch_microseconds
from dbkeeper.healthcare.audit import GENESIS_HASH, AuditEntry, entry_hash

ENTRY = AuditEntry(
    id=7,
    table_name="patients",
    row_key="42",
    action="UPDATE",
    old_values='{"phone": null}',
    new_values='{"phone": "555"}',
    actor="dr.grey",
    txid=1234,
    occurred_at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
    prev_hash=GENESIS_HASH,
    row_hash="",
)


def test_hash_is_sha256_of_length_prefixed_fields() -> None:
    canonical = (
        f'64:{GENESIS_HASH};1:7;8:patients;2:42;6:UPDATE;15:{{"phone": null}};'
        f'16:{{"phone": "555"}};7:dr.grey;4:1234;16:{epoch_microseconds(ENTRY.occurred_at)};'
    )
    assert entry_hash(ENTRY) == hashlib.sha256(canonical.encode()).hexdigest()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", 8),
        ("table_name", "encounters"),
        ("row_key", "43"),
        ("action", "DELETE"),
        ("old_values", None),
        ("new_values", '{"phone": "556"}'),
        ("actor", "dr.house"),
        ("txid", 1235),
        ("occurred_at", ENTRY.occurred_at + timedelta(microseconds=1)),
        ("prev_hash", "f" * 64),
    ],
)
def test_changing_any_field_changes_the_hash(field: str, value: Any) -> None:
    assert entry_hash(dataclasses.replace(ENTRY, **{field: value})) != entry_hash(ENTRY)


def test_null_and_empty_text_hash_differently() -> None:
    assert entry_hash(dataclasses.replace(ENTRY, old_values=None)) != entry_hash(
        dataclasses.replace(ENTRY, old_values="")
    )


def test_moving_text_across_a_field_boundary_changes_the_hash() -> None:
    shifted = dataclasses.replace(ENTRY, table_name="patients4", row_key="2")
    assert entry_hash(shifted) != entry_hash(ENTRY)


def test_lengths_count_characters_not_bytes() -> None:
    entry = dataclasses.replace(ENTRY, actor="Zoë")
    expected_piece = "3:Zoë;"
    canonical = (
        f'64:{GENESIS_HASH};1:7;8:patients;2:42;6:UPDATE;15:{{"phone": null}};'
        f'16:{{"phone": "555"}};{expected_piece}4:1234;16:{epoch_microseconds(ENTRY.occurred_at)};'
    )
    assert entry_hash(entry) == hashlib.sha256(canonical.encode()).hexdigest()


def test_epoch_microseconds_is_exact_for_any_timezone() -> None:
    moment = datetime(1970, 1, 1, 1, 0, 0, 1, tzinfo=UTC)
    elsewhere = moment.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Kolkata"))
    assert epoch_microseconds(moment) == epoch_microseconds(elsewhere) == 3_600_000_001
