"""How far the upload of a backup has come, in MiB, for whoever shows it.

The client library reports each file's bytes as it reads them into parts; a
:class:`FileMeter` per file passes them to one :class:`UploadMeter` per backup, which
tells a :class:`~dbkeeper.work_progress.WorkProgress` in whole MiB. An attempt that is
retried from the start of its file is counted once: only bytes past the furthest an
earlier attempt of that file reached advance the count.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

from dbkeeper.work_progress import WorkProgress

MIB = 1024 * 1024
UNIT = "MiB"


def _mib(size: int) -> int:
    return -(-size // MIB)  # a started MiB counts, so a small backup is 1, not 0


class UploadMeter:
    """The bytes of a whole backup's files, shown in MiB; safe from several threads."""

    def __init__(self, shown: WorkProgress, files: Iterable[Path]) -> None:
        self.shown = shown
        self.total = sum(path.stat().st_size for path in files)
        self.counted = 0  # bytes
        self.told = 0  # MiB
        self._lock = threading.Lock()
        shown.expect(_mib(self.total))

    def add(self, size: int) -> None:
        with self._lock:
            self.counted = min(self.total, self.counted + size)
            self._tell(self.counted // MIB)

    def finish(self) -> None:
        """Every file is up: the count ends at the total, whatever the rounding."""
        with self._lock:
            self.counted = self.total
            self._tell(_mib(self.total))

    def _tell(self, mib: int) -> None:
        if mib > self.told:
            self.shown.advance(mib - self.told)
            self.told = mib

    def file(self) -> FileMeter:
        return FileMeter(self)


class FileMeter:
    """The progress object the client library is given for one file (``set_meta`` at
    the start of every attempt, ``update`` per read)."""

    def __init__(self, meter: UploadMeter) -> None:
        self.meter = meter
        self.attempt = 0  # bytes read by the current attempt
        self.furthest = 0  # bytes of this file already counted

    def set_meta(self, object_name: str, total_length: int) -> None:
        self.attempt = 0

    def update(self, length: int) -> None:
        self.attempt += length
        if self.attempt > self.furthest:
            self.meter.add(self.attempt - self.furthest)
            self.furthest = self.attempt
