"""Resolving targets: head, base, ids and relative steps, against the current revision."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbkeeper.migrate import MigrationError, load_set, resolve_target

TOY = load_set("toy", Path(__file__).resolve().parents[2] / "fixtures" / "migration_sets")


@pytest.mark.parametrize(
    ("current", "target", "expected"),
    [
        (None, "head", "0004"),
        ("0002", "head", "0004"),
        ("0003", "base", None),
        ("0001", "0003", "0003"),
        (None, "+1", "0001"),
        ("0001", "+3", "0004"),
        ("0004", "-1", "0003"),
        ("0002", "-2", None),
        ("0002", "+0", "0002"),
    ],
)
def test_resolves_against_the_current_revision(
    current: str | None, target: str, expected: str | None
) -> None:
    assert resolve_target(TOY, current, target) == expected


@pytest.mark.parametrize(
    ("current", "target"),
    [("0002", "-3"), ("0003", "+2"), (None, "-1"), ("0001", "0005"), ("0001", "HEAD"), (None, "1")],
)
def test_out_of_range_or_unknown_targets_are_refused(current: str | None, target: str) -> None:
    with pytest.raises(MigrationError) as caught:
        resolve_target(TOY, current, target)

    assert caught.value.reason == "UnknownRevision"
    assert target in str(caught.value)
    assert "head, base" in str(caught.value)


def test_relative_target_from_a_revision_outside_the_set_is_refused() -> None:
    with pytest.raises(MigrationError, match="not in set"):
        resolve_target(TOY, "f00d", "-1")
