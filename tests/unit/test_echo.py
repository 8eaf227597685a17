"""Values quoted back to the user are whole when short and cut, with their length, when long."""

from __future__ import annotations

from dbkeeper.echo import ECHO_LIMIT, echo


def test_a_short_value_is_quoted_whole() -> None:
    assert echo("head") == "'head'"


def test_a_long_value_is_cut_and_its_length_given() -> None:
    shown = echo("x" * 10_000)

    assert shown == repr("x" * ECHO_LIMIT) + "… (10000 characters)"


def test_a_value_that_is_not_text_is_cut_by_its_repr() -> None:
    assert echo(5) == "5"
    assert echo(list(range(1000))).endswith("characters)")
    assert len(echo(list(range(1000)))) < ECHO_LIMIT + 30
