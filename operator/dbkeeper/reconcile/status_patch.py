"""Status changes as JSON merge patches (RFC 7386) that say exactly what changed, and
the three-way merge that recomputes a pass's status onto a fresher read after a conflict.

A merge patch keeps every key it does not mention, so a field that went away (a
finished migration's old message, a cleared drift list) must be sent as ``null``; and a
key that did not change is better not sent at all, so two writers of different parts of
the status (the schema handler and the periodic re-check of workloads) do not undo each
other's fields with stale copies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dbkeeper.api import DatabaseSchemaStatus

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


def rebase_status(
    before: DatabaseSchemaStatus, after: DatabaseSchemaStatus, onto: DatabaseSchemaStatus
) -> DatabaseSchemaStatus:
    """What a pass changed (``before`` -> ``after``), applied to ``onto`` (a fresher read).

    Fields the pass changed take its value; fields it left alone keep ``onto``'s.
    Conditions are merged by type: a type the pass set or changed replaces the one in
    ``onto`` (in place, or appended), a type it removed is removed, and every other
    type is kept as ``onto`` has it. So a write recomputed after a conflict never loses
    a condition someone else wrote meanwhile.
    """
    if onto == before:
        return after
    updates: dict[str, Any] = {
        name: getattr(after, name)
        for name in DatabaseSchemaStatus.model_fields
        if name != "conditions" and getattr(after, name) != getattr(before, name)
    }
    old = {c.type: c for c in before.conditions}
    new = {c.type: c for c in after.conditions}
    conditions = [c for c in onto.conditions if not (c.type in old and c.type not in new)]
    for type_, condition in new.items():
        if old.get(type_) == condition:
            continue
        if any(c.type == type_ for c in conditions):
            conditions = [condition if c.type == type_ else c for c in conditions]
        else:
            conditions.append(condition)
    updates["conditions"] = conditions
    return onto.model_copy(update=updates)
