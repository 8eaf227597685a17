"""Target verdicts and the text table of the benchmark report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmarks.report import (
    BenchmarkResult,
    TargetCheck,
    format_table,
    render_result,
    run_document,
    write_results,
)


def test_a_value_within_the_limit_passes() -> None:
    check = TargetCheck("p99", limit=5.0, measured=4.2, unit="ms")
    assert check.passed is True
    assert check.verdict() == "PASS"


def test_a_miss_says_by_how_much_and_how_many_times_the_limit() -> None:
    check = TargetCheck("p99", limit=5.0, measured=7.5, unit="ms")
    assert check.passed is False
    assert check.excess == 2.5
    assert check.verdict() == "MISS by 2.50 ms, 1.50x the limit"


def test_higher_is_better_flips_the_comparison() -> None:
    check = TargetCheck("tps", limit=1000.0, measured=800.0, unit="tx/s", higher_is_better=True)
    assert check.passed is False
    assert check.excess == 200.0


def test_a_target_not_measured_is_not_applicable() -> None:
    check = TargetCheck("p99", limit=5.0, measured=None, unit="ms")
    assert check.passed is None
    assert check.verdict() == "N/A"


def test_table_aligns_columns_and_right_aligns_numbers() -> None:
    text = format_table(["name", "ms"], [["short", 1.5], ["a longer name", 12.25]])
    lines = text.splitlines()
    assert lines[0] == "name" + " " * 13 + "ms"
    assert lines[1] == "-" * 13 + "  " + "-" * 4
    assert lines[2] == "short" + " " * 10 + "1.50"
    assert lines[3] == "a longer name  12.2"


def test_table_refuses_a_row_of_the_wrong_width() -> None:
    with pytest.raises(ValueError, match="1 cells for 2 columns"):
        format_table(["a", "b"], [[1]])


def test_rendered_result_shows_each_target_with_its_verdict() -> None:
    result = BenchmarkResult(
        name="x",
        title="Example",
        columns=["op", "p99"],
        rows=[["read", 7.0]],
        checks=[TargetCheck("read p99", 5.0, 7.0, "ms")],
        notes=["at 2000 patients"],
    )
    text = render_result(result)
    assert text.startswith("== Example ==")
    assert "read p99" in text
    assert "MISS by 2 ms, 1.40x the limit" in text
    assert text.endswith("note: at 2000 patients")


def test_results_are_written_as_json_with_a_latest_copy(tmp_path: Path) -> None:
    result = BenchmarkResult("x", "Example", ["a"], [[1]], [TargetCheck("t", 1.0, 0.5, "s")])
    document = run_document({"cores": 2}, {"scale": 10}, [result])
    path = write_results(tmp_path / "results", document)
    written = json.loads(path.read_text())
    assert written == json.loads((tmp_path / "results" / "latest.json").read_text())
    assert written["machine"] == {"cores": 2}
    assert written["benchmarks"][0]["checks"][0]["verdict"] == "PASS"
