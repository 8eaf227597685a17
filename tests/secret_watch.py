"""A session-wide watch on every log record for the passwords the tests create.

Fixtures that make a password pass it through :func:`watched`; a handler on the root
logger checks every record emitted during the session (kopf's and dbkeeper's, at every
level the operator runs log at) and remembers where one appeared. The session fails at
its end if any did.
"""

from __future__ import annotations

import logging
import threading


class SecretWatch(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self._secrets: set[str] = set()
        self._guard = threading.Lock()
        self.records_seen = 0
        self.leaks: list[str] = []

    def register(self, value: str) -> None:
        if len(value) >= 8:  # short strings would match by accident
            with self._guard:
                self._secrets.add(value)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a record whose arguments do not format: nothing to read
            return
        if record.exc_info and record.exc_info[1] is not None:
            text += f" {record.exc_info[1]}"
        with self._guard:
            self.records_seen += 1
            secrets = tuple(self._secrets)
        for secret in secrets:
            if secret in text:
                self.leaks.append(f"{record.name}: {text[:200].replace(secret, '<password>')}")


WATCH = SecretWatch()


def watched(value: str) -> str:
    """Register a password the session must never log; returns it unchanged."""
    WATCH.register(value)
    return value
