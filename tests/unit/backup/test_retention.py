"""Which backups the retention rules remove (pure, with a clock the test controls)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dbkeeper.backup.catalog import BackupCatalog
from dbkeeper.backup.manifest import BackupManifest
from dbkeeper.backup.retention import parse_max_age, prune, select_for_pruning

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _backup(
    days_ago: float,
    *,
    verified: bool | None = None,
    name: str = "",
    drill_error: str | None = None,
) -> BackupManifest:
    created = NOW - timedelta(days=days_ago)
    return BackupManifest(
        id=name or f"b{days_ago:g}",
        created_at=created,
        finished_at=created + timedelta(minutes=1),
        database="clinic",
        schema_revision="0001",
        server_version="15.8",
        format="directory",
        size_bytes=1,
        duration_s=1.0,
        files={"dump/toc.dat": "0" * 64},
        row_counts={},
        verify_result=None if verified is None else ("passed" if verified else "failed"),
        drill_error=drill_error,
        drill_error_at=None if drill_error is None else NOW,
    )


def test_keep_last_removes_all_but_the_newest_n_oldest_first() -> None:
    backups = [_backup(d) for d in (1, 2, 3, 4, 5)]

    assert select_for_pruning(backups, keep_last=2, max_age=None, now=NOW) == ["b5", "b4", "b3"]


def test_max_age_removes_backups_older_than_it() -> None:
    backups = [_backup(d) for d in (1, 10, 29, 31, 40)]

    assert select_for_pruning(backups, keep_last=None, max_age=timedelta(days=30), now=NOW) == [
        "b40",
        "b31",
    ]


def test_a_backup_goes_when_it_breaks_either_limit() -> None:
    backups = [_backup(d) for d in (1, 2, 3, 45)]

    pruned = select_for_pruning(backups, keep_last=3, max_age=timedelta(days=30), now=NOW)

    assert pruned == ["b45"]
    assert select_for_pruning(backups, keep_last=2, max_age=timedelta(days=30), now=NOW) == [
        "b45",
        "b3",
    ]


def test_the_newest_verified_backup_is_never_removed() -> None:
    backups = [
        _backup(1),
        _backup(2, verified=False),
        _backup(3, verified=True),
        _backup(4, verified=True),
    ]

    pruned = select_for_pruning(backups, keep_last=1, max_age=None, now=NOW)

    assert "b3" not in pruned
    assert pruned == ["b4", "b2"]


def test_a_drill_that_could_not_run_leaves_the_newest_verified_backup_protected() -> None:
    backups = [
        _backup(1),
        _backup(2, drill_error="cannot connect: FATAL: password authentication failed"),
        _backup(3, verified=True, drill_error="cannot connect: FATAL: too many connections"),
    ]

    assert select_for_pruning(backups, keep_last=1, max_age=None, now=NOW) == ["b2"]


def test_the_newest_verified_backup_survives_max_age_too() -> None:
    backups = [_backup(40, verified=True), _backup(50, verified=True), _backup(1)]

    assert select_for_pruning(backups, keep_last=None, max_age=timedelta(days=30), now=NOW) == [
        "b50"
    ]


def test_the_newest_backup_is_never_removed_even_when_all_are_too_old() -> None:
    backups = [_backup(60), _backup(90)]

    assert select_for_pruning(backups, keep_last=None, max_age=timedelta(days=30), now=NOW) == [
        "b90"
    ]


def test_without_limits_nothing_is_removed() -> None:
    assert select_for_pruning([_backup(d) for d in (1, 400)], None, None, NOW) == []


def test_order_of_the_input_does_not_matter() -> None:
    backups = [_backup(d) for d in (3, 1, 5, 2, 4)]

    assert select_for_pruning(backups, keep_last=2, max_age=None, now=NOW) == ["b5", "b4", "b3"]


@pytest.mark.parametrize("keep_last", [0, -1])
def test_keep_last_below_one_is_rejected(keep_last: int) -> None:
    with pytest.raises(ValueError, match="keep_last must be at least 1"):
        select_for_pruning([_backup(1)], keep_last=keep_last, max_age=None, now=NOW)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("2w", timedelta(weeks=2)),
        ("90m", timedelta(minutes=90)),
        ("45s", timedelta(seconds=45)),
    ],
)
def test_max_age_is_parsed_from_a_number_and_a_unit(text: str, expected: timedelta) -> None:
    assert parse_max_age(text) == expected


@pytest.mark.parametrize("text", ["30", "d", "0d", "-1d", "30 days", "1.5d", ""])
def test_a_malformed_max_age_is_rejected_naming_the_units(text: str) -> None:
    with pytest.raises(ValueError, match="s, m, h, d or w"):
        parse_max_age(text)


class _DrillPassesJustBeforeTheLock(BackupCatalog):
    """A catalog where a drill of ``drilled`` passes after prune read the catalog and
    before prune holds the backup's lock."""

    def __init__(self, destination: Path, drilled: BackupManifest) -> None:
        super().__init__(destination)
        self.drilled = drilled

    @contextlib.contextmanager
    def _passing_drill_then_lock(self, backup_id: str) -> Iterator[None]:
        if backup_id == self.drilled.id:
            self.write(self.drilled.model_copy(update={"verify_result": "passed"}))
        with super().writing(backup_id):
            yield

    def writing(self, backup_id: str) -> contextlib.AbstractContextManager[None]:
        return self._passing_drill_then_lock(backup_id)


def test_prune_decides_again_under_the_lock(tmp_path: Path) -> None:
    backups = [_backup(d) for d in (1, 2, 3)]
    catalog = _DrillPassesJustBeforeTheLock(tmp_path, drilled=backups[1])
    for manifest in backups:
        catalog.write(manifest)

    result = prune(catalog, keep_last=1, max_age=None, now=NOW)

    assert result.removed == ["b3"]
    assert [m.id for m in catalog.list()] == ["b2", "b1"]
