"""Plain progress lines (logs, pipes, -o json): every 30 s of work, a last line only
after one was printed, none after a failure."""

from __future__ import annotations

import io

import pytest

from dbkeeper.cli import progress as progress_module
from dbkeeper.cli.progress import PLAIN_EVERY, Progress


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(progress_module, "monotonic", fake)
    return fake


def test_a_short_run_prints_nothing(clock: Clock) -> None:
    out = io.StringIO()
    shown = Progress("seed", 100, "patients", bar=False, stream=out)
    shown.advance(100)
    shown.close()
    assert out.getvalue() == ""


def test_a_long_run_prints_a_line_every_interval_and_a_last_one(clock: Clock) -> None:
    out = io.StringIO()
    shown = Progress("seed", 100, "patients", bar=False, stream=out)
    clock.now += PLAIN_EVERY + 1
    shown.advance(10)
    clock.now += 1
    shown.advance(10)  # too soon for another line
    clock.now += PLAIN_EVERY
    shown.advance(80)
    shown.close()

    assert out.getvalue().splitlines() == [
        "progress: seed: 10/100 patients (10%), 31s",
        "progress: seed: 100/100 patients (100%), 62s",
        "progress: seed: 100/100 patients (100%), done in 62s",
    ]


def test_work_of_unknown_size_says_it_is_still_working(clock: Clock) -> None:
    out = io.StringIO()
    shown = Progress("backup create: dumping clinic", None, "", bar=False, stream=out)
    clock.now += PLAIN_EVERY
    shown.tick()
    shown.close()
    assert out.getvalue().splitlines() == [
        "progress: backup create: dumping clinic: still working, 30s",
        "progress: backup create: dumping clinic: done, 30s",
    ]


def test_a_failure_ends_without_a_last_line(clock: Clock) -> None:
    out = io.StringIO()
    shown = Progress("audit verify", None, "", bar=False, stream=out)
    clock.now += PLAIN_EVERY
    shown.tick()
    shown.close(succeeded=False)
    assert out.getvalue().splitlines() == ["progress: audit verify: still working, 30s"]


def test_work_told_its_size_counts_against_it(clock: Clock) -> None:
    out = io.StringIO()
    shown = Progress("backup create: dumping clinic", None, "tables", bar=False, stream=out)
    shown.expect(4)
    clock.now += PLAIN_EVERY
    shown.advance()
    shown.close()
    assert out.getvalue().splitlines() == [
        "progress: backup create: dumping clinic: 1/4 tables (25%), 30s",
        "progress: backup create: dumping clinic: 1/4 tables (25%), done in 30s",
    ]


def test_a_count_that_was_low_grows_instead_of_passing_100_percent(clock: Clock) -> None:
    out = io.StringIO()
    shown = Progress("backup restore", None, "tables", bar=False, stream=out)
    shown.expect(1)
    shown.advance()
    clock.now += PLAIN_EVERY
    shown.advance()
    assert shown.total == 2
    assert out.getvalue().splitlines() == ["progress: backup restore: 2/2 tables (100%), 30s"]


def test_closing_again_changes_nothing(clock: Clock) -> None:
    """The dump's display is closed when the upload starts, and again when the command's
    block ends: the last line is printed once, and a later failure does not undo it."""
    out = io.StringIO()
    shown = Progress("backup create: dumping clinic", 4, "tables", bar=False, stream=out)
    clock.now += PLAIN_EVERY
    shown.advance(4)
    shown.close()
    shown.close(succeeded=False)
    assert out.getvalue().splitlines() == [
        "progress: backup create: dumping clinic: 4/4 tables (100%), 30s",
        "progress: backup create: dumping clinic: 4/4 tables (100%), done in 30s",
    ]
