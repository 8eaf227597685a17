"""Logging set-up: text or JSON lines, with passwords redacted from every record.

At INFO the operator's log says what it did: one line per Event it posts (Normal at
INFO, Warning at WARNING, each with its reason and message). What its libraries say about
their own routine work is shown at DEBUG only (:data:`ROUTINE`): kopf's "Handler ...
succeeded" after every watch event, Alembic's "Context impl PostgresqlImpl" on every
check, and the access lines of the health and metrics endpoints' probes.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from dbkeeper.conninfo import redact

# (logger name prefix, message pattern) of records that are routine: demoted to DEBUG.
ROUTINE: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("kopf", re.compile(r"^(Handler|Activity|Daemon|Timer) '[^']+' succeeded\.$")),
    ("kopf", re.compile(r"^OS signals are ignored")),
    ("alembic.runtime.migration", re.compile(r"^(Context impl|Will assume)")),
    ("aiohttp.access", re.compile(r"")),
)
# kopf's per-object records carry its settings object (not serialisable) and a flag of
# its own; the object they are about (k8s_ref) is kept.
_NOT_LOGGED = ("settings", "k8s_skip")


class RedactingFilter(logging.Filter):
    """Rewrites each record's message so no DSN password can reach a log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


def is_routine(record: logging.LogRecord) -> bool:
    message = record.getMessage()
    return record.levelno == logging.INFO and any(
        (record.name == prefix or record.name.startswith(prefix + ".")) and pattern.search(message)
        for prefix, pattern in ROUTINE
    )


class RoutineFilter(logging.Filter):
    """Shows :data:`ROUTINE` records as DEBUG: only when the level is DEBUG."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if not is_routine(record):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return self.level <= logging.DEBUG


def _json_value(value: Any) -> str:
    """What a field JSON cannot hold becomes its text, never a logging error."""
    return str(value)


def configure_logging(log_format: str = "text", level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={
                    "asctime": "time",
                    "levelname": "level",
                    "name": "logger",
                    "k8s_ref": "object",
                },
                reserved_attrs=[*RESERVED_ATTRS, *_NOT_LOGGED],
                json_default=_json_value,
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s %(message)s"))
    handler.addFilter(RedactingFilter())
    handler.addFilter(RoutineFilter(logging.getLevelName(level.upper())))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
