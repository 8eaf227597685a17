"""Waiting for a condition in tests: poll it, with a deadline generous enough for a
loaded machine, and fail naming what never happened. Tests wait with this, never with a
fixed sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# The mechanisms under test act within seconds; a loaded CI machine is many times slower.
DEADLINE = 60.0


def wait_for(predicate: Callable[[], T | None], timeout: float = DEADLINE, what: str = "") -> T:
    """Poll ``predicate`` until it returns something truthy, and return that; fail after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"gave up after {timeout:g} s waiting for {what or 'a condition'}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)
