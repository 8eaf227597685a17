"""Reading what a dbkeeper command wrote: its error line(s) apart from the progress
lines a long run prints (dbkeeper/cli/progress.py), and its ``-o json`` object held to
the shape its parser declares (dbkeeper/json_shapes/)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any, Literal, get_args, get_origin

from dbkeeper.cli import build_parser
from dbkeeper.cli.progress import PLAIN_PREFIX
from dbkeeper.json_shapes import JsonShape
from dbkeeper.json_shapes.fields import fields_of, is_shape, is_union


def error_lines(stderr: str) -> list[str]:
    """stderr's lines without progress lines: a failed command leaves exactly one."""
    return [line for line in stderr.strip().splitlines() if not line.startswith(PLAIN_PREFIX)]


def declared_shapes(argv: Sequence[str]) -> tuple[JsonShape, ...]:
    """The shapes the parser of the command in ``argv`` declares for ``-o json``; words
    before the command (``python -m dbkeeper.cli``) and options are passed over."""
    parser = build_parser()
    for word in argv:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction) and word in action.choices:
                parser = action.choices[word]
    shapes: tuple[JsonShape, ...] | None = parser.get_default("json_shapes")
    assert shapes, f"{parser.prog} declares no JSON shape"
    return shapes


def shape_problems(value: object, tp: object, where: str = "$") -> list[str]:
    """How ``value`` (parsed JSON) differs from the type ``tp`` of a shape: keys missing
    or not declared, values of another type; empty when it conforms."""
    if is_shape(tp):
        if not isinstance(value, dict):
            return [f"{where} is {value!r}, not an object"]
        fields = {field.name: field for field in fields_of(tp)}
        problems = [
            f"{where} has no key {name!r}"
            for name, field in fields.items()
            if field.required and name not in value
        ]
        problems += [
            f"{where} has the undeclared key {key!r}" for key in value if key not in fields
        ]
        for key, item in value.items():
            if key in fields:
                problems += shape_problems(item, fields[key].type, f"{where}.{key}")
        return problems
    if is_union(tp):
        return _closest(value, get_args(tp), where)
    if get_origin(tp) is Literal:
        if any(value == v and type(value) is type(v) for v in get_args(tp)):
            return []
        return [f"{where} is {value!r}, not one of {get_args(tp)}"]
    if get_origin(tp) is list:
        if not isinstance(value, list):
            return [f"{where} is {value!r}, not an array"]
        (item_type,) = get_args(tp)
        return [
            p
            for i, item in enumerate(value)
            for p in shape_problems(item, item_type, f"{where}[{i}]")
        ]
    if get_origin(tp) is dict:
        if not isinstance(value, dict):
            return [f"{where} is {value!r}, not an object"]
        _, item_type = get_args(tp)
        return [
            p for k, item in value.items() for p in shape_problems(item, item_type, f"{where}.{k}")
        ]
    return [] if _is_scalar(value, tp) else [f"{where} is {value!r}, not {tp}"]


def _is_scalar(value: object, tp: object) -> bool:
    if tp is object:
        return True
    if tp is type(None):
        return value is None
    if tp is float:  # a JSON number may be written without a fraction
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(tp, type) and isinstance(value, tp)


def _closest(value: object, options: Sequence[object], where: str) -> list[str]:
    """No problem when ``value`` is one of ``options``, else those of the nearest one
    (for a value that is there, the nearest that is not null)."""
    if value is not None and len(options) > 1:
        options = [option for option in options if option is not type(None)]
    found = [shape_problems(value, option, where) for option in options]
    return [] if any(not problems for problems in found) else min(found, key=len)


def assert_json_shape(argv: Sequence[str], data: object) -> None:
    """``data`` is one of the objects the command in ``argv`` declares for ``-o json``."""
    problems = _closest(data, declared_shapes(argv), "$")
    assert not problems, f"dbkeeper {' '.join(argv)} -o json: " + "; ".join(problems)


def json_output(argv: Sequence[str], stdout: str) -> Any:
    """The one JSON object the command in ``argv`` printed, checked against its shape."""
    data = json.loads(stdout)
    assert_json_shape(argv, data)
    return data
