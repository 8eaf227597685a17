"""How pgbouncer's restarts are spaced and reported, against a fake child and clock."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from dbkeeper.pooler.child_process import (
    ChildStartError,
    RestartBackoff,
    describe_exit,
    keep_running,
    shell_exit_status,
)


class Stop(Exception):
    """Ends keep_running in a test, as SIGTERM's KeyboardInterrupt does in the CLI."""


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class FakeChild:
    """Runs ``uptimes[i]`` seconds on its i-th life; ``failed_starts`` restarts fail."""

    def __init__(self, clock: FakeClock, uptimes: list[float], failed_starts: int = 0) -> None:
        self.clock = clock
        self._uptimes: Iterator[float] = iter(uptimes)
        self.failed_starts = failed_starts
        self.restarts = 0

    def wait(self) -> int:
        try:
            self.clock.now += next(self._uptimes)
        except StopIteration:
            raise Stop from None
        return -signal.SIGKILL

    def restart(self) -> None:
        if self.failed_starts:
            self.failed_starts -= 1
            raise ChildStartError("pgbouncer exited with code 1: FATAL nowhere to listen on")
        self.restarts += 1

    def last_output(self) -> str:
        return "LOG process up"


def run_until_stopped(child: FakeChild, clock: FakeClock, backoff: RestartBackoff) -> list[str]:
    lines: list[str] = []
    with pytest.raises(Stop):
        keep_running(child, lines.append, backoff, clock=clock, sleep=clock.sleep)
    return lines


def test_delays_double_from_half_a_second_up_to_the_cap() -> None:
    backoff = RestartBackoff(first=0.5, cap=30.0, stable_after=60.0)
    delays = [backoff.delay_after(uptime=1.0) for _ in range(9)]
    assert delays == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]


def test_a_child_that_stayed_up_long_enough_restarts_after_the_first_delay_again() -> None:
    backoff = RestartBackoff(first=0.5, cap=30.0, stable_after=60.0)
    for _ in range(5):
        backoff.delay_after(uptime=1.0)
    assert backoff.delay_after(uptime=60.0) == 0.5
    assert backoff.delay_after(uptime=1.0) == 1


def test_a_backoff_without_a_positive_first_delay_is_refused() -> None:
    with pytest.raises(ValueError, match="first"):
        RestartBackoff(first=0.0)


def test_each_death_is_one_line_with_the_signal_and_the_next_delay() -> None:
    clock = FakeClock()
    child = FakeChild(clock, uptimes=[5.0, 2.0])
    lines = run_until_stopped(child, clock, RestartBackoff())
    assert lines == [
        "pgbouncer was killed by signal 9 (SIGKILL) after 5.0s; restarting it in 0.5s; "
        "its last output: LOG process up",
        "pgbouncer is accepting connections again (restart 1)",
        "pgbouncer was killed by signal 9 (SIGKILL) after 2.0s; restarting it in 1s; "
        "its last output: LOG process up",
        "pgbouncer is accepting connections again (restart 2)",
    ]
    assert clock.sleeps == [0.5, 1]


def test_a_restart_that_fails_is_reported_and_retried_after_a_longer_delay() -> None:
    clock = FakeClock()
    child = FakeChild(clock, uptimes=[5.0], failed_starts=2)
    lines = run_until_stopped(child, clock, RestartBackoff())
    assert clock.sleeps == [0.5, 1, 2]
    assert lines[1] == (
        "pgbouncer did not start again (pgbouncer exited with code 1: FATAL nowhere to "
        "listen on); retrying in 1s"
    )
    assert lines[2].endswith("retrying in 2s")
    assert child.restarts == 1


def test_a_long_life_resets_the_delay_to_the_first() -> None:
    clock = FakeClock()
    child = FakeChild(clock, uptimes=[1.0, 1.0, 1.0, 120.0])
    run_until_stopped(child, clock, RestartBackoff(first=0.5, stable_after=60.0))
    assert clock.sleeps == [0.5, 1, 2, 0.5]


@pytest.mark.parametrize(
    ("returncode", "described", "status"),
    [
        (0, "exited with code 0", 0),
        (1, "exited with code 1", 1),
        (-9, "was killed by signal 9 (SIGKILL)", 137),
        (-15, "was killed by signal 15 (SIGTERM)", 143),
    ],
)
def test_an_exit_is_described_and_mapped_as_a_shell_would(
    returncode: int, described: str, status: int
) -> None:
    assert describe_exit(returncode) == described
    assert shell_exit_status(returncode) == status
