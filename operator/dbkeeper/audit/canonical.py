"""The canonical text the audit hashes are taken over, shared by every verifier.

Each field is written as ``<length in characters>:<text>;`` or ``-;`` when NULL, so no
two different field lists have the same text; timestamps are integer microseconds since
the Unix epoch; a hash is the lowercase hex SHA-256 of the UTF-8 bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def field(value: str | None) -> str:
    return "-;" if value is None else f"{len(value)}:{value};"


def epoch_microseconds(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def text_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def digest(values: Iterable[str | None]) -> str:
    return hashlib.sha256("".join(field(v) for v in values).encode("utf-8")).hexdigest()
