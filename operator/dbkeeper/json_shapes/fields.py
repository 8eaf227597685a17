"""A JSON shape read back: its keys with their types and descriptions, and the shapes
nested in them (for docs/cli.md, and for the tests that hold outputs to their shapes)."""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated, NotRequired, Required, TypeGuard, Union, get_args, get_origin

from dbkeeper.json_shapes import JsonShape


@dataclass(frozen=True)
class Field:
    """One key of a shape."""

    name: str
    type: object
    """The value's type, without ``NotRequired`` and the description."""
    required: bool
    doc: str | None
    """The description; ``None`` when the key has none."""


def is_shape(tp: object) -> TypeGuard[JsonShape]:
    """Whether ``tp`` is a shape (a ``TypedDict`` class) rather than a value's type."""
    return isinstance(tp, type) and typing.is_typeddict(tp)


def fields_of(shape: JsonShape) -> list[Field]:
    """The keys of ``shape`` in the order they are declared (those of a shape it
    extends first)."""
    hints = typing.get_type_hints(shape, include_extras=True)
    required: frozenset[str] = vars(shape)["__required_keys__"]
    found = []
    for name, hint in hints.items():
        tp, doc = hint, None
        while get_origin(tp) in (NotRequired, Required, Annotated):
            if get_origin(tp) is Annotated:
                doc = next((m for m in tp.__metadata__ if isinstance(m, str)), doc)
                tp = tp.__origin__
            else:
                (tp,) = get_args(tp)
        found.append(Field(name, tp, name in required, doc))
    return found


def is_union(tp: object) -> bool:
    """Whether ``tp`` is ``A | B`` (``Optional`` included)."""
    return get_origin(tp) in (Union, types.UnionType)


def _nested(tp: object) -> Iterator[JsonShape]:
    if is_shape(tp):
        yield tp
        return
    for arg in get_args(tp):
        yield from _nested(arg)


def shapes_within(shapes: Iterable[JsonShape]) -> list[JsonShape]:
    """``shapes`` and every shape their keys hold, each once, each followed by the ones
    it holds that came up nowhere before."""
    seen: list[JsonShape] = []

    def visit(shape: JsonShape) -> None:
        if shape in seen:
            return
        seen.append(shape)
        for field in fields_of(shape):
            for inner in _nested(field.type):
                visit(inner)

    for shape in shapes:
        visit(shape)
    return seen


def shape_name(shape: JsonShape) -> str:
    """The name a reader sees: the class name without its ``Json`` ending."""
    return shape.__name__.removesuffix("Json")
