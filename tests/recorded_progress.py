"""A stand-in for a progress display: it keeps what the library told it."""

from __future__ import annotations


class RecordedProgress:
    """A ``dbkeeper.work_progress.WorkProgress`` that records every total it is told
    and every advance; an advance before any total, or by nothing, fails the test."""

    def __init__(self) -> None:
        self.expected: list[int] = []
        self.steps: list[int] = []

    @property
    def total(self) -> int | None:
        """The last total told, None before any."""
        return self.expected[-1] if self.expected else None

    @property
    def done(self) -> int:
        return sum(self.steps)

    def expect(self, total: int) -> None:
        self.expected.append(total)

    def advance(self, count: int = 1) -> None:
        assert self.expected, "advanced before being told how much work there is"
        assert count > 0, "advanced by nothing"
        self.steps.append(count)
