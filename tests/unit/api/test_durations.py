"""Durations as users write them: the grammar, its limits, and reading back what we write."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dbkeeper.api.durations import (
    DURATION_PATTERN,
    DurationError,
    format_duration,
    parse_duration,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5s", timedelta(seconds=5)),
        ("15m", timedelta(minutes=15)),
        ("1h", timedelta(hours=1)),
        ("30d", timedelta(days=30)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("90s", timedelta(seconds=90)),
    ],
)
def test_parses_written_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "5", "s", "5x", "1m1h", "1h1h", "0s", "0h0m", "-5s", "5 s", "1.5h", "5sec", " 5s", "5s\n"],
)
def test_rejects_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(DurationError):
        parse_duration(text)


def test_error_says_what_is_allowed() -> None:
    with pytest.raises(DurationError, match=r"unit \(d, h, m, s\).*e\.g\. 5s"):
        parse_duration("5 minutes")


@given(st.integers(min_value=1, max_value=10**9))
def test_formatted_durations_read_back(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    assert parse_duration(format_duration(value)) == value


@given(st.integers(min_value=1, max_value=10**9))
def test_crd_pattern_accepts_every_formatted_duration(seconds: int) -> None:
    assert re.search(DURATION_PATTERN, format_duration(timedelta(seconds=seconds)))


@given(st.text(alphabet="0123456789dhms", min_size=2, max_size=8))
def test_crd_pattern_accepts_no_less_strictly_than_the_parser(text: str) -> None:
    # The API server sees only the pattern; whatever it lets through must be something
    # the operator reads the same way or rejects only for being zero.
    if re.search(DURATION_PATTERN, text):
        if set(text) - set("0dhms"):
            parse_duration(text)
        else:
            with pytest.raises(DurationError, match="zero"):
                parse_duration(text)
    else:
        with pytest.raises(DurationError):
            parse_duration(text)


def test_sub_second_durations_cannot_be_written() -> None:
    with pytest.raises(DurationError):
        format_duration(timedelta(milliseconds=1500))
