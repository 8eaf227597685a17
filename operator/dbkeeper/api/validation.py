"""Turning a raw ``spec`` mapping into a typed spec, or into errors a person can act on.

The operator, the CLI and the demo all enter through :func:`parse_spec`. Errors carry the
field's path in the resource's own camelCase form (``spec.pooler.defaultPoolSize``) and
say what is allowed, never Python or pydantic vocabulary.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from dbkeeper.api.spec import DatabaseSchemaSpec

_MAX_SHOWN_INPUT = 60
_ERRORS_IN_SUMMARY = 2


@dataclass(frozen=True)
class FieldError:
    """One problem with one field: ``path`` like ``spec.backup.schedule``."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class SpecInvalid(Exception):
    """A spec that cannot be used; ``errors`` lists every problem found."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors: list[FieldError] = list(errors)
        shown = "; ".join(str(e) for e in self.errors[:_ERRORS_IN_SUMMARY])
        more = len(self.errors) - _ERRORS_IN_SUMMARY
        suffix = f" (and {more} more)" if more > 0 else ""
        super().__init__(f"invalid DatabaseSchema spec: {shown}{suffix}")

    @property
    def paths(self) -> list[str]:
        return [e.path for e in self.errors]


def parse_spec(raw: Mapping[str, Any]) -> DatabaseSchemaSpec:
    """The typed spec of a DatabaseSchema, or :class:`SpecInvalid` naming every bad field.

    Only the resource's camelCase field names are accepted (as the API server would);
    ``raw`` may be any mapping, such as the view kopf hands to handlers.
    """
    if not isinstance(raw, Mapping):
        raise SpecInvalid([FieldError("spec", f"must be an object, got {_show(raw)}")])
    try:
        return DatabaseSchemaSpec.model_validate(_plain(raw), by_alias=True, by_name=False)
    except ValidationError as exc:
        raise SpecInvalid([_field_error(e, "spec") for e in exc.errors()]) from None


def errors_from_validation(exc: ValidationError, root: str) -> list[FieldError]:
    """Translate a pydantic error raised for a :class:`DatabaseSchemaSpec` at ``root``."""
    return [_field_error(e, root) for e in exc.errors()]


def _plain(value: Any) -> Any:
    """Plain dicts and lists all the way down (strict validation wants exactly those)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _path(root: str, loc: Sequence[int | str]) -> str:
    path = root
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN_INPUT else text[: _MAX_SHOWN_INPUT - 3] + "..."


def _field_error(error: ErrorDetails, root: str) -> FieldError:
    loc = list(error["loc"])
    ctx = error.get("ctx") or {}
    extra_field = ctx.get("field")
    if isinstance(extra_field, str):
        loc.extend(extra_field.split("."))
    return FieldError(_path(root, loc), _message(error, loc))


def _message(error: ErrorDetails, loc: Sequence[int | str]) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    given = _show(error.get("input"))
    if kind == "dbkeeper_invalid":
        return str(ctx["detail"])
    if kind == "extra_forbidden":
        allowed = _allowed_fields(loc[:-1])
        listing = f"; allowed here: {', '.join(allowed)}" if allowed else ""
        return f"unknown field{listing}"
    if kind == "missing":
        return "is required"
    if kind == "greater_than_equal":
        return f"must be at least {ctx['ge']}, got {given}"
    if kind == "less_than_equal":
        return f"must be at most {ctx['le']}, got {given}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"must be a whole number, got {given}"
    if kind in ("bool_type", "bool_parsing"):
        return f"must be true or false, got {given}"
    if kind == "string_type":
        return f"must be a string, got {given}"
    if kind in ("literal_error", "enum"):
        return f"must be one of {ctx['expected']}, got {given}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be an object with fields, got {given}"
    if kind == "list_type":
        return f"must be a list, got {given}"
    if kind == "too_short":
        return f"must have at least {ctx['min_length']} entries"
    if kind == "too_long":
        return f"must have at most {ctx['max_length']} entries"
    return error["msg"]


def _allowed_fields(loc: Sequence[int | str]) -> list[str]:
    """The camelCase field names of the model at ``loc`` inside the spec."""
    model: type[BaseModel] | None = DatabaseSchemaSpec
    for part in loc:
        if model is None:
            return []
        if isinstance(part, int):
            continue
        field = next(
            (f for name, f in model.model_fields.items() if (f.alias or name) == part), None
        )
        model = _model_in(field.annotation) if field is not None else None
    if model is None:
        return []
    return [f.alias or name for name, f in model.model_fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model class inside ``X``, ``X | None``, ``list[X]`` or ``Annotated[X, ...]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, typing.Annotated):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None
