"""Status changes as JSON merge patches (RFC 7386) that say exactly what changed.

A merge patch keeps every key it does not mention, so a field that went away (a
finished migration's old message, a cleared drift list) must be sent as ``null``; and a
key that did not change is better not sent at all, so two writers of different parts of
the status (the schema handler and the periodic re-check of workloads) do not undo each
other's fields with stale copies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Written by kopf, not by dbkeeper: never cleared by our patches.
_FOREIGN_KEYS = frozenset({"kopf"})


def minimal_patch(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """The top-level keys that differ, nested objects replaced whole (stale keys nulled)."""
    patch: dict[str, Any] = {}
    for key, value in after.items():
        old = before.get(key)
        if old == value:
            continue
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            patch[key] = _replacing(old, value)
        else:
            patch[key] = value
    for key in before:
        if key not in after and key not in _FOREIGN_KEYS:
            patch[key] = None
    return patch


def _replacing(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    patch: dict[str, Any] = dict(after)
    for key, old in before.items():
        if key not in after:
            patch[key] = None
        elif isinstance(old, Mapping) and isinstance(after[key], Mapping):
            patch[key] = _replacing(old, after[key])
    return patch


def merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """``target`` with a JSON merge patch applied: ``None`` removes a key (RFC 7386)."""
    merged = dict(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_patch(merged[key], value)
        elif isinstance(value, Mapping):
            merged[key] = merge_patch({}, value)
        else:
            merged[key] = value
    return merged
