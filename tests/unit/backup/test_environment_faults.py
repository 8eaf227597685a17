"""Which failures are the surroundings' (a drill error), and which the backup's."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors as pg_errors

from dbkeeper.backup.environment_faults import (
    is_environment_error,
    is_environment_sqlstate,
    is_environment_tool_output,
)


@pytest.mark.parametrize(
    "sqlstate",
    [
        *("08006", "08001", "28P01", "28000", "42501", "53100", "53200", "53300"),
        *("57P01", "57P03", "57014", "58030", "3D000", "25006"),
    ],
)
def test_connection_login_privilege_resource_and_shutdown_states_are_the_environment(
    sqlstate: str,
) -> None:
    assert is_environment_sqlstate(sqlstate)


@pytest.mark.parametrize("sqlstate", ["22P02", "23505", "42P01", "42704", "XX001", "", None])
def test_data_and_schema_states_are_not_the_environment(sqlstate: str | None) -> None:
    assert not is_environment_sqlstate(sqlstate)


def test_a_connection_that_failed_without_a_sqlstate_is_the_environment() -> None:
    assert is_environment_error(psycopg.OperationalError("connection failed: FATAL: ..."))


def test_psycopg_errors_are_judged_by_their_sqlstate() -> None:
    assert is_environment_error(pg_errors.InsufficientPrivilege("permission denied"))
    assert is_environment_error(pg_errors.AdminShutdown("terminating connection"))
    assert not is_environment_error(pg_errors.UndefinedTable("relation does not exist"))
    assert not is_environment_error(pg_errors.InvalidTextRepresentation("bad input"))


@pytest.mark.parametrize(
    "output",
    [
        'pg_restore: error: connection to server at "db" (10.0.0.5), port 5432 failed: '
        'FATAL:  password authentication failed for user "app"',
        'pg_restore: error: connection to server at "db", port 5432 failed: FATAL:  too many '
        'connections for role "app"',
        "pg_restore: error: could not execute query: ERROR:  permission denied for schema public",
        "pg_restore: error: could not execute query: ERROR:  must be owner of table visits",
        "pg_restore: error: could not execute query: server closed the connection unexpectedly",
        'pg_restore: error: COPY failed for table "visits": ERROR:  could not extend file '
        '"base/16384/16385": No space left on device',
        "pg_restore: error: could not execute query: ERROR:  out of shared memory",
        "pg_restore: error: could not execute query: FATAL:  terminating connection due to "
        "administrator command",
        "pg_restore: error: could not execute query: ERROR:  canceling statement due to "
        "statement timeout",
        "pg_restore: error: could not execute query: ERROR:  could not open extension control "
        'file "/usr/share/postgresql/15/extension/pgaudit.control": No such file or directory',
    ],
)
def test_tool_output_naming_the_surroundings_is_the_environment(output: str) -> None:
    assert is_environment_tool_output(output)


@pytest.mark.parametrize(
    "output",
    [
        "pg_restore: error: did not find magic string in file header",
        "pg_restore: error: could not read from input file: end of file",
        'pg_restore: error: COPY failed for table "visits": ERROR:  invalid input syntax for '
        'type integer: "x"',
        'pg_restore: error: could not execute query: ERROR:  relation "clinic.x" does not exist',
        "",
    ],
)
def test_tool_output_about_the_dump_is_not_the_environment(output: str) -> None:
    assert not is_environment_tool_output(output)


def test_a_statement_of_the_dump_echoed_by_pg_restore_does_not_count() -> None:
    output = (
        'pg_restore: error: could not execute query: ERROR:  syntax error at or near "IS"\n'
        "Command was: COMMENT ON TABLE clinic.visits IS 'permission denied: FATAL: too many';"
    )

    assert not is_environment_tool_output(output)
