"""The resource's status as ``kubectl get dbs`` and ``kubectl describe`` would show it.

The columns are the CRD's printer columns: name, phase, current revision, target,
last backup and age (times shown as ages, as kubectl does for ``date`` columns).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any


def age(since: datetime | str | None, now: datetime) -> str:
    """kubectl's short age: 42s, 5m, 3h, 2d."""
    if since is None:
        return "<none>"
    if isinstance(since, str):
        since = datetime.fromisoformat(since.replace("Z", "+00:00"))
    seconds = max(0, int((now - since).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def table(rows: Sequence[Sequence[str]], indent: str = "  ") -> str:
    """Left-aligned columns separated by three spaces, as kubectl prints them."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        indent
        + "   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def resource_table(
    name: str,
    target: str,
    created: datetime,
    status: Mapping[str, Any],
    now: datetime,
) -> str:
    last_backup = status.get("lastBackup") or {}
    return table(
        [
            ("NAME", "PHASE", "CURRENT", "TARGET", "LAST BACKUP", "AGE"),
            (
                name,
                str(status.get("phase") or "<none>"),
                str(status.get("currentRevision") or "<none>"),
                target,
                age(last_backup.get("finishedAt"), now),
                age(created, now),
            ),
        ]
    )


def conditions_table(status: Mapping[str, Any]) -> str:
    conditions: list[Mapping[str, Any]] = list(status.get("conditions") or [])
    if not conditions:
        return "  (no conditions yet)"
    rows = [("CONDITION", "STATUS", "REASON", "MESSAGE")]
    rows += [
        (
            str(c.get("type", "")),
            str(c.get("status", "")),
            str(c.get("reason", "")),
            _shorten(str(c.get("message", ""))),
        )
        for c in conditions
    ]
    return table(rows)


def _shorten(text: str, limit: int = 70) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
