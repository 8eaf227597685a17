"""Benchmark results: targets checked against measurements, the text table, the JSON file."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

Cell = str | int | float | None


@dataclass(frozen=True)
class TargetCheck:
    """One target of the issue next to the value measured for it.

    ``higher_is_better`` flips the comparison (throughputs); by default the measured
    value must not exceed ``limit``.
    """

    name: str
    limit: float
    measured: float | None
    unit: str
    higher_is_better: bool = False
    note: str = ""

    @property
    def passed(self) -> bool | None:
        if self.measured is None:
            return None
        if self.higher_is_better:
            return self.measured >= self.limit
        return self.measured <= self.limit

    @property
    def excess(self) -> float | None:
        """How far the measurement is on the wrong side of the limit (0 when it passes)."""
        if self.measured is None:
            return None
        gap = self.limit - self.measured if self.higher_is_better else self.measured - self.limit
        return max(gap, 0.0)

    def verdict(self) -> str:
        passed = self.passed
        if passed is None:
            return "N/A"
        if passed:
            return "PASS"
        assert self.measured is not None
        assert self.excess is not None
        times = f", {self.measured / self.limit:.2f}x the limit" if self.limit else ""
        return f"MISS by {_number(self.excess)} {self.unit}{times}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "limit": self.limit,
            "measured": None if self.measured is None else round(self.measured, 4),
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
            "passed": self.passed,
            "excess": None if self.excess is None else round(self.excess, 4),
            "verdict": self.verdict(),
            "note": self.note,
        }


@dataclass
class BenchmarkResult:
    """What one benchmark measured: a table for people, checks, and raw data for JSON."""

    name: str
    title: str
    columns: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    checks: list[TargetCheck] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "table": {"columns": self.columns, "rows": self.rows},
            "checks": [check.to_dict() for check in self.checks],
            "notes": self.notes,
            "data": self.data,
        }


def _number(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e6:
        return str(int(value))
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def format_cell(value: Cell) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return _number(value)
    return str(value)


def format_table(columns: Sequence[str], rows: Sequence[Sequence[Cell]]) -> str:
    """A plain-text table: a header, a rule, one line per row; numbers right-aligned."""
    text_rows = [[format_cell(cell) for cell in row] for row in rows]
    for row in text_rows:
        if len(row) != len(columns):
            raise ValueError(f"a row has {len(row)} cells for {len(columns)} columns: {row}")
    widths = [
        max([len(column), *(len(row[index]) for row in text_rows)])
        for index, column in enumerate(columns)
    ]
    numeric = [
        all(isinstance(row[index], int | float) or row[index] is None for row in rows) and rows
        for index in range(len(columns))
    ]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(widths[i]) if numeric[i] else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(list(columns)), rule, *(line(row) for row in text_rows)])


def format_checks(checks: Sequence[TargetCheck]) -> str:
    rows: list[list[Cell]] = [
        [
            check.name,
            f"{'>=' if check.higher_is_better else '<='} {_number(check.limit)} {check.unit}",
            None if check.measured is None else f"{_number(check.measured)} {check.unit}",
            check.verdict(),
        ]
        for check in checks
    ]
    return format_table(["target", "limit", "measured", "verdict"], rows)


def render_result(result: BenchmarkResult) -> str:
    parts = [f"== {result.title} ==", format_table(result.columns, result.rows)]
    if result.checks:
        parts += ["", format_checks(result.checks)]
    parts += [f"note: {note}" for note in result.notes]
    return "\n".join(parts)


def render_summary(results: Sequence[BenchmarkResult]) -> str:
    checks = [check for result in results for check in result.checks]
    passed = sum(1 for check in checks if check.passed)
    missed = sum(1 for check in checks if check.passed is False)
    return f"targets: {passed} PASS, {missed} MISS, {len(checks) - passed - missed} N/A"


def run_document(
    machine: dict[str, Any], options: dict[str, Any], results: Sequence[BenchmarkResult]
) -> dict[str, Any]:
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "options": options,
        "benchmarks": [result.to_dict() for result in results],
    }


def write_results(folder: Path, document: dict[str, Any]) -> Path:
    """Write the run's JSON as ``<folder>/bench-<UTC time>.json`` and ``latest.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = folder / f"bench-{stamp}.json"
    text = json.dumps(document, indent=2, sort_keys=False, default=str)
    path.write_text(text + "\n", encoding="utf-8")
    (folder / "latest.json").write_text(text + "\n", encoding="utf-8")
    return path
