"""How far a pg_dump or pg_restore is, in tables, from what it says with ``--verbose``.

pg_dump logs ``dumping contents of table "s.t"`` as it starts on a table's data, and
pg_restore ``processing data for table "s.t"``; parallel workers (``--jobs``) say the
same, into the same stderr, where their lines may run into each other. The number of
tables is known before the tool starts: the dump's snapshot counts each table's rows
(``database_facts.row_counts``) and the manifest keeps those counts, so a restore has
them too.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from dbkeeper.work_progress import WorkProgress

# Only the message itself: parallel workers share stderr, and the tool writes its
# "pg_dump: " prefix separately, so another worker's line may come in between.
_TABLE_STARTED = re.compile(r'(?:dumping contents of table|processing data for table) "')


def tables_started(line: str) -> int:
    """How many tables' data a ``--verbose`` line of pg_dump or pg_restore starts on
    (two workers' messages may share a line, or a line may have lost its prefix)."""
    return len(_TABLE_STARTED.findall(line))


def table_counter(shown: WorkProgress | None, tables: int) -> Callable[[str], None] | None:
    """A line handler for ``run_tool`` that advances ``shown`` once per table (None
    when nobody is shown the progress)."""
    if shown is None:
        return None
    shown.expect(tables)

    def on_line(line: str) -> None:
        started = tables_started(line)
        if started:
            shown.advance(started)

    return on_line
