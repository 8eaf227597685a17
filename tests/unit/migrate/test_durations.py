"""Durations as people write them in specs and flags."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dbkeeper.migrate import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5s", timedelta(seconds=5)),
        ("15m", timedelta(minutes=15)),
        ("250ms", timedelta(milliseconds=250)),
        ("1h30m", timedelta(minutes=90)),
        ("1.5s", timedelta(milliseconds=1500)),
        ("2d", timedelta(days=2)),
    ],
)
def test_parses_numbers_with_units(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "5", "s", "5 s", "5x", "-5s", "5s junk", "m5"])
def test_rejects_what_is_not_a_duration_and_says_what_is_allowed(text: str) -> None:
    with pytest.raises(ValueError, match=r"ms, s, m, h or d"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["5s", "15m", "250ms", "2h", "3d"])
def test_format_is_the_inverse_of_parse(text: str) -> None:
    assert format_duration(parse_duration(text)) == text
