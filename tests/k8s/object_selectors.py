"""Label and field selectors of list and watch requests (`?labelSelector=`, `?fieldSelector=`).

Label selectors support the whole set-based syntax (`a=b`, `a!=b`, `a`, `!a`, `a in (x,y)`,
`a notin (x,y)`). Field selectors accept `=`, `==` and `!=` on any dotted path, which is
more lenient than a real server (it allows only a few fields per kind).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from tests.k8s.api_errors import bad_request

ObjectPredicate = Callable[[Mapping[str, Any]], bool]

_SET_REQUIREMENT = re.compile(r"^\s*([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split_requirements(text: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    current = ""
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part.strip() for part in parts if part.strip()]


def _label_requirement(text: str) -> Callable[[Mapping[str, str]], bool]:
    match = _SET_REQUIREMENT.match(text)
    if match:
        key, operator, values_text = match.groups()
        values = {value.strip() for value in values_text.split(",") if value.strip()}
        if operator == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    for operator in ("!=", "==", "="):
        if operator in text:
            key, value = (part.strip() for part in text.split(operator, 1))
            if not key:
                raise bad_request(f"invalid label selector: {text!r}")
            if operator == "!=":
                return lambda labels: labels.get(key) != value
            return lambda labels: labels.get(key) == value
    if text.startswith("!"):
        key = text[1:].strip()
        return lambda labels: key not in labels
    if re.fullmatch(r"[\w./-]+", text):
        return lambda labels: text in labels
    raise bad_request(f"invalid label selector: {text!r}")


def label_selector(text: str | None) -> ObjectPredicate:
    """A predicate on objects for a `labelSelector` query value (None or '' matches all)."""
    requirements = [_label_requirement(part) for part in _split_requirements(text or "")]

    def matches(obj: Mapping[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(requirement(labels) for requirement in requirements)

    return matches


def _field_value(obj: Mapping[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return "" if value is None else str(value)


def field_selector(text: str | None) -> ObjectPredicate:
    """A predicate on objects for a `fieldSelector` query value (None or '' matches all)."""
    requirements: list[tuple[str, bool, str]] = []
    for part in _split_requirements(text or ""):
        for operator in ("!=", "==", "="):
            if operator in part:
                path, value = (piece.strip() for piece in part.split(operator, 1))
                requirements.append((path, operator != "!=", value))
                break
        else:
            raise bad_request(f"invalid field selector: {part!r}")

    def matches(obj: Mapping[str, Any]) -> bool:
        return all(
            (_field_value(obj, path) == value) == equal for path, equal, value in requirements
        )

    return matches
