"""Progress of long commands on stderr: a bar on a terminal, plain lines otherwise.

On a terminal (and without ``-o json``) a tqdm bar redraws in place, and is wiped when
the work fails so the error stays one line. Anywhere else (a CI log, a pod's log,
``-o json``) progress is plain lines starting with ``progress:``, one every
``PLAIN_EVERY`` of work, and a last one when work that printed any ends well: a short
command prints none. Work whose size is not known (a pg_dump) shows the time it has
taken so far, from a ticking thread, until it is told its size (pg_dump's tables, once
the snapshot has counted them).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from time import monotonic
from typing import TextIO

from tqdm import tqdm

PLAIN_EVERY = 30.0  # seconds between plain progress lines
PLAIN_PREFIX = "progress: "
TICK = 1.0  # seconds between redraws of work of unknown size


def _screen(stream: TextIO) -> tuple[int, int]:
    """The terminal's (columns, lines); 80x24 where it reports none (a new
    pseudo-terminal says 0x0, and tqdm would then draw nothing)."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (OSError, ValueError):
        return 80, 24
    return size.columns or 80, size.lines or 24


def wants_bar(args: argparse.Namespace, stream: TextIO) -> bool:
    return getattr(args, "output", "text") != "json" and stream.isatty()


class Progress:
    """Counts done units of one piece of work and shows it."""

    def __init__(
        self, what: str, total: int | None, unit: str, *, bar: bool, stream: TextIO
    ) -> None:
        self.what, self.total, self.unit = what, total, unit
        self.done = 0
        self.stream = stream
        self.started = monotonic()
        self._said_at = self.started
        self._lock = threading.Lock()
        self._said = False
        self._closed = False
        columns, lines = _screen(stream)
        self._bar = (
            tqdm(
                total=total,
                desc=what,
                unit=f" {unit}" if unit else "it",
                file=stream,
                ncols=columns,
                nrows=lines,
            )
            if bar
            else None
        )

    def expect(self, total: int) -> None:
        """Work that started with an unknown size turns out to be ``total`` units."""
        with self._lock:
            self._resize(max(total, self.done))

    def advance(self, count: int = 1) -> None:
        with self._lock:
            self.done += count
            if self.total is not None and self.done > self.total:
                self._resize(self.done)  # a count that was low: never past 100%
            if self._bar is not None:
                self._bar.update(count)
            elif monotonic() - self._said_at >= PLAIN_EVERY:
                self._say()

    def tick(self) -> None:
        """Redraw work of unknown size (the elapsed time moves on)."""
        with self._lock:
            if self._bar is not None:
                self._bar.refresh()
            elif monotonic() - self._said_at >= PLAIN_EVERY:
                self._say()

    def _resize(self, total: int) -> None:
        self.total = total
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()

    def close(self, succeeded: bool = True) -> None:
        """End the display (once: later calls do nothing), kept on screen when the work
        ``succeeded``, wiped when not."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._bar is not None:
                self._bar.leave = succeeded
                self._bar.close()
            elif succeeded and self._said:
                self._say(final=True)

    def _say(self, final: bool = False) -> None:
        self._said, self._said_at = True, monotonic()
        elapsed = self._said_at - self.started
        if self.total:
            share = f"{self.done}/{self.total} {self.unit} ({100 * self.done // self.total}%)"
        else:
            share = "done" if final else "still working"
        when = f"done in {elapsed:.0f}s" if final and self.total else f"{elapsed:.0f}s"
        line = f"{PLAIN_PREFIX}{self.what}: {share}, {when}"
        print(line, file=self.stream, flush=True)


@contextmanager
def progress(
    args: argparse.Namespace,
    what: str,
    total: int | None,
    unit: str,
    stream: TextIO | None = None,
) -> Iterator[Progress]:
    """A :class:`Progress` for ``what``; work of unknown size (``total`` None) ticks on
    its own until the block ends."""
    out = stream if stream is not None else sys.stderr
    shown = Progress(what, total, unit, bar=wants_bar(args, out), stream=out)
    stop = threading.Event()
    ticker = None
    if total is None:

        def tick() -> None:
            while not stop.wait(TICK):
                shown.tick()

        ticker = threading.Thread(target=tick, name="dbkeeper-progress", daemon=True)
        ticker.start()
    succeeded = False
    try:
        yield shown
        succeeded = True
    finally:
        stop.set()
        if ticker is not None:
            ticker.join()
        shown.close(succeeded)
