"""Which of pg_dump's and pg_restore's --verbose lines start on a table's data."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbkeeper.backup.environment_faults import is_environment_tool_output
from dbkeeper.backup.pg_tools import ToolFailed, run_tool
from dbkeeper.backup.tool_progress import table_counter, tables_started
from dbkeeper.conninfo import ConnInfo
from tests.recorded_progress import RecordedProgress


def test_the_lines_that_start_a_table() -> None:
    assert tables_started('pg_dump: dumping contents of table "clinic.patients"') == 1
    assert tables_started('pg_restore: processing data for table "audit.log"\n') == 1
    # Quotes inside a name are not escaped in these lines.
    assert tables_started('pg_dump: dumping contents of table "odd.a"b"') == 1


def test_workers_whose_lines_ran_into_each_other_are_each_counted() -> None:
    # Worker A wrote its prefix, worker B its whole line, then A its message.
    assert tables_started('pg_restore: pg_restore: processing data for table "a.x"') == 1
    assert tables_started('processing data for table "a.y"') == 1
    assert (
        tables_started('pg_dump: dumping contents of table "a.x"dumping contents of table "a.y"')
        == 2
    )


def test_other_verbose_lines_do_not() -> None:
    for line in (
        "pg_dump: last built-in OID is 16383",
        'pg_dump: reading table "clinic.patients"',
        'pg_restore: creating TABLE "clinic.patients"',
        "pg_restore: launching item 3371 TABLE DATA patients",
        "pg_restore: finished item 3270 TABLE DATA patients",
        "",
    ):
        assert tables_started(line) == 0, line


def test_the_counter_expects_the_tables_then_advances_once_per_table() -> None:
    shown = RecordedProgress()
    on_line = table_counter(shown, 3)
    assert on_line is not None
    assert shown.total == 3

    for line in (
        "pg_dump: reading schemas",
        'pg_dump: dumping contents of table "clinic.patients"',
        'pg_dump: dumping contents of table "clinic.visits"',
        "pg_dump: saving encoding = UTF8",
    ):
        on_line(line)

    assert shown.done == 2


def test_nobody_shown_means_no_handler() -> None:
    assert table_counter(None, 3) is None


def test_a_failed_verbose_tool_reports_its_error_lines_not_its_progress(tmp_path: Path) -> None:
    """A table's name in a --verbose line must not become (or hide) the failure's reason."""
    tool = tmp_path / "pg_dump"
    tool.write_text(
        "#!/bin/sh\n"
        "echo 'pg_dump: dumping contents of table \"public.permission denied\"' >&2\n"
        "echo 'pg_dump: error: query failed: ERROR:  relation \"x\" does not exist' >&2\n"
        "echo 'pg_dump: detail: Query was: COPY x TO stdout;' >&2\n"
        "echo 'pg_dump: reading schemas' >&2\n"
        "exit 1\n"
    )
    tool.chmod(0o755)
    seen: list[str] = []

    with pytest.raises(ToolFailed) as failed:
        run_tool([str(tool)], ConnInfo("localhost", 5432, "db", "user", "pw"), on_line=seen.append)

    assert len(seen) == 4, "every line reached the handler as it came"
    assert str(failed.value) == (
        'pg_dump failed: pg_dump: error: query failed: ERROR:  relation "x" does not exist'
    )
    assert "dumping contents" not in failed.value.output
    assert "Query was: COPY" in failed.value.output
    assert not is_environment_tool_output(failed.value.output)
