"""Reading captured query plans: which nodes scan a large table sequentially.

Input is the JSON of ``EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)``: a list holding one
object with a ``Plan`` tree whose children are under ``Plans``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

SEQUENTIAL_SCANS = frozenset({"Seq Scan", "Parallel Seq Scan"})
# A table this big is read sequentially only by mistake in an OLTP query.
LARGE_TABLE_ROWS = 10_000


@dataclass(frozen=True)
class SeqScanFinding:
    """A sequential scan of a table of at least the threshold's rows."""

    table: str
    table_rows: int
    rows_read: float

    def describe(self) -> str:
        return f"Seq Scan on {self.table} ({self.table_rows} rows in the table)"


def plan_nodes(plan: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every node of a plan tree, depth first, the root first."""
    yield plan
    for child in plan.get("Plans", ()):
        yield from plan_nodes(child)


def root_plan(explained: Any) -> Mapping[str, Any]:
    """The root node of EXPLAIN's FORMAT JSON output (a list, or its first element)."""
    document = explained[0] if isinstance(explained, list) else explained
    if not isinstance(document, Mapping) or "Plan" not in document:
        raise ValueError("not the output of EXPLAIN (FORMAT JSON): no 'Plan' key")
    plan = document["Plan"]
    if not isinstance(plan, Mapping):
        raise ValueError("not the output of EXPLAIN (FORMAT JSON): 'Plan' is not an object")
    return plan


def _qualified(node: Mapping[str, Any]) -> str:
    relation = str(node.get("Relation Name", "?"))
    schema = node.get("Schema")
    return f"{schema}.{relation}" if schema else relation


def _rows_of(name: str, table_rows: Mapping[str, int], unknown: int) -> int:
    if name in table_rows:
        return table_rows[name]
    # Without VERBOSE, EXPLAIN names the table but not its schema: match the bare name
    # when exactly one schema has a table of that name.
    bare = name.rpartition(".")[2]
    matches = [rows for key, rows in table_rows.items() if key.rpartition(".")[2] == bare]
    return matches[0] if len(matches) == 1 else unknown


def large_seq_scans(
    explained: Any, table_rows: Mapping[str, int], threshold: int = LARGE_TABLE_ROWS
) -> list[SeqScanFinding]:
    """Sequential scans of tables with at least ``threshold`` rows.

    ``table_rows`` maps ``schema.table`` to its row count; a table missing from it (or
    a bare name found in several schemas) is treated as large, since its size is unknown.
    """
    findings: list[SeqScanFinding] = []
    for node in plan_nodes(root_plan(explained)):
        if node.get("Node Type") not in SEQUENTIAL_SCANS:
            continue
        name = _qualified(node)
        rows = _rows_of(name, table_rows, threshold)
        if rows >= threshold:
            findings.append(
                SeqScanFinding(
                    table=name,
                    table_rows=rows,
                    rows_read=float(node.get("Actual Rows", node.get("Plan Rows", 0))),
                )
            )
    return findings


def execution_ms(explained: Any) -> float | None:
    """The server-side execution time EXPLAIN ANALYZE measured, when present."""
    document = explained[0] if isinstance(explained, list) else explained
    value = document.get("Execution Time") if isinstance(document, Mapping) else None
    return float(value) if value is not None else None
