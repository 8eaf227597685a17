"""A pg_restore newer than its server: only the transaction_timeout it sets is forgiven."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbkeeper.backup.restore_compat import (
    only_unknown_timeout,
    pg_restore_args,
    tolerates_unknown_timeout,
)

# What pg_restore 18.6 printed restoring into PostgreSQL 15 with --jobs=2.
UNKNOWN = (
    'pg_restore: error: could not execute query: ERROR:  unrecognized configuration parameter "transaction_timeout"\n'  # noqa: E501
    "Command was: SET transaction_timeout = 0;\n"
)
CONFLICT = (
    'pg_restore: error: could not execute query: ERROR:  relation "t" already exists\n'
    "Command was: CREATE TABLE public.t (\n    a integer\n);\n"
)


@pytest.mark.parametrize(
    ("client", "server", "tolerant"),
    [(18, 16, True), (17, 14, True), (18, 17, False), (18, 18, False), (16, 16, False)],
)
def test_only_a_client_of_17_or_newer_on_an_older_server_is_tolerant(
    client: int, server: int, tolerant: bool
) -> None:
    assert tolerates_unknown_timeout(client, server) is tolerant


def test_a_tolerant_run_does_not_stop_at_the_first_error() -> None:
    dump = Path("/backups/x/dump")
    assert "--exit-on-error" in pg_restore_args("pg_restore", dump, 2, tolerant=False)
    assert pg_restore_args("pg_restore", dump, 2, tolerant=True) == [
        "pg_restore",
        "--jobs=2",
        str(dump),
    ]


def test_errors_that_are_all_the_unknown_setting_are_forgiven() -> None:
    output = UNKNOWN * 4 + "pg_restore: warning: errors ignored on restore: 2\n"
    assert only_unknown_timeout(output)


@pytest.mark.parametrize(
    "output",
    [
        UNKNOWN + CONFLICT + "pg_restore: warning: errors ignored on restore: 2\n",
        CONFLICT,
        "pg_restore: error: connection to server on socket failed: No such file\n",
        "",
    ],
)
def test_any_other_error_still_fails_the_restore(output: str) -> None:
    assert not only_unknown_timeout(output)
