"""Turn "the status should now be X" into a JSON merge patch that really says X.

A merge patch keeps every key it does not mention, so a field that went away (a
finished migration's old message, a cleared drift list) must be sent as ``null``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Written by kopf, not by dbkeeper: never cleared by our patches.
_FOREIGN_KEYS = frozenset({"kopf"})


def replacing_patch(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    patch: dict[str, Any] = dict(after)
    for key, old in before.items():
        if key in _FOREIGN_KEYS:
            continue
        if key not in after:
            patch[key] = None
        elif isinstance(old, Mapping) and isinstance(after[key], Mapping):
            patch[key] = _nested(old, after[key])
    return patch


def _nested(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    patch: dict[str, Any] = dict(after)
    for key, old in before.items():
        if key not in after:
            patch[key] = None
        elif isinstance(old, Mapping) and isinstance(after[key], Mapping):
            patch[key] = _nested(old, after[key])
    return patch
