"""Drift against a described set: its 16-hex checksum prefixes compare with full sha256s."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dbkeeper.migrate import (
    checksum_matches,
    describe_set,
    encode_description,
    load_set,
    parse_description,
)
from dbkeeper.migrate import status as status_module
from dbkeeper.migrate.sets import MigrationSet
from dbkeeper.migrate.status import status_of

SETS_ROOT = Path(__file__).resolve().parents[2] / "fixtures" / "migration_sets"
FULL = "ab" * 32


def test_a_full_checksum_matches_only_itself() -> None:
    assert checksum_matches(FULL, FULL)
    assert not checksum_matches(FULL, "cd" * 32)


def test_a_prefix_of_the_recorded_checksum_matches() -> None:
    assert checksum_matches(FULL, FULL[:16])


def test_a_different_prefix_does_not_match() -> None:
    assert not checksum_matches(FULL, "ab" * 7 + "ff")


def test_a_prefix_shorter_than_sixteen_never_matches() -> None:
    assert not checksum_matches(FULL, FULL[:15])
    assert not checksum_matches(FULL, "")


def described_toy() -> tuple[MigrationSet, MigrationSet]:
    toy = load_set("toy", SETS_ROOT)
    description = encode_description(describe_set(toy, render=False))
    return toy, parse_description(description, "toy", None).migration_set


def status_with(
    monkeypatch: pytest.MonkeyPatch, current: str, recorded: dict[str, str], the_set: MigrationSet
) -> Any:
    # status_of reads only alembic_version and the history's checksums: both faked.
    monkeypatch.setattr(status_module, "current_revision", lambda connection: current)
    monkeypatch.setattr(status_module, "applied_checksums", lambda connection, name: recorded)
    return status_of(None, the_set)  # type: ignore[arg-type]


def test_a_described_set_shows_no_drift_where_the_files_are_unchanged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    toy, described = described_toy()
    recorded = {revision.id: revision.checksum for revision in toy.revisions}

    status = status_with(monkeypatch, "0003", recorded, described)

    assert status.drift == []
    assert status.pending == ["0004"]


def test_a_described_set_shows_drift_where_a_file_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    toy, described = described_toy()
    recorded = {revision.id: revision.checksum for revision in toy.revisions}
    recorded["0002"] = "0" * 64

    status = status_with(monkeypatch, "0003", recorded, described)

    assert [(item.revision, item.recorded) for item in status.drift] == [("0002", "0" * 64)]
    assert status.drift[0].current == toy.revision("0002").checksum[:16]
