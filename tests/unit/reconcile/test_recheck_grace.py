"""The re-check leaves a new generation to the change handlers, but not for ever."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest

from dbkeeper.reconcile import recheck
from dbkeeper.reconcile.runtime import Outcome, ResourceView, Runtime
from dbkeeper.settings import Settings

SETTINGS = Settings(recheck_interval=timedelta(seconds=1))


def _view(generation: int, status: dict[str, Any]) -> ResourceView:
    return ResourceView("ns", "db", generation, {}, status, {}, "uid-1")


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    seen: list[int] = []

    def fake_reconcile(view: ResourceView, runtime: Runtime, settings: Settings) -> Outcome:
        seen.append(view.generation)
        return Outcome(phase="Ready")

    monkeypatch.setattr(recheck, "reconcile_schema", fake_reconcile)
    monkeypatch.setattr(recheck, "probe_health", lambda view, runtime: None)
    monkeypatch.setattr(recheck, "GRACE_INTERVALS", 0)  # grace becomes the 3 s floor
    recheck._unhandled_since.clear()
    return seen


def test_an_unhandled_generation_waits_for_the_grace_then_is_reconciled(
    calls: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    view = _view(3, {"phase": "Failed", "observedGeneration": 2})
    runtime: Any = object()
    assert recheck.recheck_schema(view, runtime, SETTINGS) is None
    assert calls == []
    clock = time.monotonic() + 3.5
    monkeypatch.setattr(recheck, "_clock", lambda: clock)
    assert recheck.recheck_schema(view, runtime, SETTINGS) == Outcome(phase="Ready")
    assert calls == [3]


def test_a_handled_failed_generation_is_left_alone(calls: list[int]) -> None:
    view = _view(2, {"phase": "Failed", "observedGeneration": 2})
    assert recheck.recheck_schema(view, object(), SETTINGS) is None  # type: ignore[arg-type]
    assert calls == []


def test_a_migrating_resource_is_never_reconciled_from_the_recheck(calls: list[int]) -> None:
    view = _view(5, {"phase": "Migrating", "observedGeneration": 4})
    recheck._unhandled_since[(view.key, 5)] = 0.0  # long overdue
    assert recheck.recheck_schema(view, object(), SETTINGS) is None  # type: ignore[arg-type]
    assert calls == []
