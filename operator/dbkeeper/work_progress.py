"""What long library work tells whoever shows its progress (the CLI's bar or lines).

The library says how much work there is once it knows, then each part as it is done;
it never draws anything itself. ``dbkeeper.cli.progress.Progress`` is the display.
"""

from __future__ import annotations

from typing import Protocol


class WorkProgress(Protocol):
    def expect(self, total: int) -> None:
        """There are ``total`` units of work (tables, rows)."""

    def advance(self, count: int = 1) -> None:
        """``count`` more units are done."""
