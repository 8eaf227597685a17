"""Which of pg_dump's and pg_restore's --verbose lines start on a table's data."""

from __future__ import annotations

from dbkeeper.backup.tool_progress import table_counter, tables_started


class Shown:
    def __init__(self) -> None:
        self.total: int | None = None
        self.done = 0

    def expect(self, total: int) -> None:
        self.total = total

    def advance(self, count: int = 1) -> None:
        self.done += count


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
    shown = Shown()
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
