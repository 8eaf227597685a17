"""Small promises of the CLI's output: numbered SQL in plans, and a backup destination
that is not there named as such (and not created) by the commands that only read it."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbkeeper.cli import main
from dbkeeper.cli.migrate_commands import _numbered


def test_plan_numbers_the_sql_as_the_lint_counts_its_lines() -> None:
    sql = "\n\nBEGIN;\n\nCREATE TABLE t (id int);\nCOMMIT;\n\n"

    assert _numbered(sql) == [
        "        3  BEGIN;",
        "        4",
        "        5  CREATE TABLE t (id int);",
        "        6  COMMIT;",
    ]


@pytest.mark.parametrize(
    "action",
    [
        ["list"],
        ["verify", "some-backup", "--dsn", "host=127.0.0.1 dbname=x"],
        ["restore", "latest", "--dsn", "host=127.0.0.1 dbname=x"],
        ["prune", "--keep-last", "1"],
    ],
)
def test_a_destination_folder_that_does_not_exist_is_named_and_not_created(
    action: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere"

    code = main(["backup", *action, "--destination", str(missing)])

    assert code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line == (
        f"dbkeeper: error: backup destination {missing} does not exist: check --destination "
        "(or DBKEEPER_BACKUP_DESTINATION / DBKEEPER_BACKUP_DIR)"
    )
    assert not missing.exists()
