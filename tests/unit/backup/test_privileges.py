"""The one line that names a missing privilege, and the statement that grants it."""

from __future__ import annotations

from dbkeeper.backup.privileges import Missing, describe, names_missing_privilege, sql_name


def test_a_plain_role_name_is_written_as_it_is_and_others_are_quoted() -> None:
    assert sql_name("app_owner") == "app_owner"
    assert sql_name("App-Owner") == '"App-Owner"'
    assert sql_name('say "hi"') == '"say ""hi"""'


def test_the_line_names_the_role_each_privilege_and_its_fix() -> None:
    line = describe(
        "app_owner",
        [
            Missing("CREATEDB", "a drill needs it", "ALTER ROLE app_owner CREATEDB"),
            Missing("pg_signal_backend", "ending sessions needs it", "GRANT x TO app_owner"),
        ],
    )

    assert "\n" not in line
    assert line.startswith("missing privilege: role 'app_owner' lacks CREATEDB, which a drill")
    assert "run ALTER ROLE app_owner CREATEDB" in line
    assert "; and pg_signal_backend, which ending sessions needs it: run GRANT x TO" in line
    assert line.endswith("nothing was created")


def test_a_command_error_line_is_recognised_as_a_missing_privilege_by_its_opening() -> None:
    line = describe("o", [Missing("CREATEDB", "x", "ALTER ROLE o CREATEDB")])

    assert names_missing_privilege(f"restore drill of backup 'b' could not run: {line}")
    assert not names_missing_privilege("permission denied to create database")
