"""The migrating child's last steps: report, close the pipe, then freeze the heap.

The parent joins the child once it has reported, so the child's exit is on the move's
path; freezing the heap (see ``dbkeeper.cli.run``) makes its final garbage collection
skip what the imports built. The move itself is covered by
tests/integration/migrate/test_isolated.py.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest

import dbkeeper.migrate.isolated as isolated
from dbkeeper.conninfo import ConnInfo
from dbkeeper.migrate import MigrationOptions


class _Channel:
    def __init__(self) -> None:
        self.sent: list[tuple[object, int]] = []
        self.closed_frozen: int | None = None

    def send(self, message: object) -> None:
        self.sent.append((message, gc.get_freeze_count()))

    def close(self) -> None:
        self.closed_frozen = gc.get_freeze_count()


def test_the_child_freezes_its_heap_only_after_reporting_and_closing(
    monkeypatch: pytest.MonkeyPatch, unfrozen_heap: None
) -> None:
    outcome = isolated._Refused("LockBusy", "another migration is running", None)

    def move(*_: Any) -> isolated._Outcome:
        return outcome

    monkeypatch.setattr(isolated, "_move_in_child", move)
    channel = _Channel()
    isolated._child_main(
        ConnInfo("127.0.0.1", 5432, "app", "app"),
        Path("/nonexistent"),
        "app",
        MigrationOptions(target="head"),
        None,
        channel,  # type: ignore[arg-type]
    )
    assert channel.sent == [(outcome, 0)]
    assert channel.closed_frozen == 0
    assert gc.get_freeze_count() > 0
