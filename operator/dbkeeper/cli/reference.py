"""docs/cli.md, written from the parsers themselves (and the JSON shapes they declare,
dbkeeper/json_shapes/) so it cannot go stale.

``dbkeeper crds``-style: ``python -m dbkeeper.cli.reference`` prints it, and a unit test
compares the committed file with what the parsers say now.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from typing import Literal, get_args, get_origin

from dbkeeper.cli import build_parser
from dbkeeper.json_shapes import JsonShape
from dbkeeper.json_shapes.fields import (
    Field,
    fields_of,
    is_shape,
    is_union,
    shape_name,
    shapes_within,
)

_HEADER = """# The dbkeeper command line

Written from the command's own parsers (`python -m dbkeeper.cli.reference >
docs/cli.md`; a unit test fails when this file and the parsers disagree).

Every command prints text for people, or with `-o json` exactly one JSON object (never a
bare list, so a field can be added without breaking a script); its keys, their types and
meanings are listed under the command, in "JSON output" (a key marked optional may be
absent; every other key is always there, `null` where its type allows). A failure is one line
`dbkeeper: error: <reason>` on stderr, exit code 1, or 2 for a usage mistake; passwords
appear in neither stream. Connections come from `--dsn` or `$DBKEEPER_DSN` (prefer the
variable: arguments are visible to other users of the machine), and for `dbkeeper wait`
also from libpq's `PG*` variables.

Long work shows progress on stderr: `seed` counts patients, `migrate` numbers each
revision `[i/n]`, `backup create|restore|verify` count tables (pg_dump's and
pg_restore's own `--verbose` reports, against the tables the snapshot counted),
`backup create` into a bucket then counts the MiB it uploads, `audit verify` counts
rows, and `backup prune` shows the time taken so far. On a terminal it is a bar, wiped
if the command fails; in a log, a pipe or with `-o json` it is a line starting
`progress:` every 30 s of work (a short command prints none), so the error of a failed
command stays its one line.
"""


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser, str]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield (*path, name), sub, helps.get(name, "")
                yield from _commands(sub, (*path, name))


def _option(action: argparse.Action) -> str:
    if action.option_strings:
        names = ", ".join(f"`{name}`" for name in action.option_strings)
        if action.nargs != 0 and action.metavar is not None:
            names += f" {action.metavar}"
        elif action.nargs != 0 and action.choices is not None:
            names += " {" + ",".join(str(c) for c in action.choices) + "}"
        elif action.nargs != 0:
            names += f" {action.dest.upper()}"
    else:
        names = f"`{action.metavar or action.dest}`"
    required = " (required)" if action.required and action.option_strings else ""
    return f"- {names}{required}: {action.help or ''}"


_JSON_TYPES: dict[object, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    type(None): "null",
    object: "any JSON value",
}


def _type_text(tp: object) -> str:
    """A value's type in JSON's words: ``string or null``, ``array of `Step` ``."""
    if is_shape(tp):
        return f"`{shape_name(tp)}`"
    if isinstance(tp, type) and tp in _JSON_TYPES:
        return _JSON_TYPES[tp]
    if get_origin(tp) is Literal:
        return " or ".join(json.dumps(value) for value in get_args(tp))
    if is_union(tp):
        return " or ".join(_type_text(arg) for arg in get_args(tp))
    if get_origin(tp) is list:
        (item,) = get_args(tp)
        return f"array of {_grouped(item)}"
    if get_origin(tp) is dict:
        key, value = get_args(tp)
        return f"object mapping {_grouped(key)} to {_grouped(value)}"
    raise TypeError(f"no JSON type reads {tp!r}")


def _grouped(tp: object) -> str:
    text = _type_text(tp)
    return f"({text})" if " or " in text else text


def _summary(shape: JsonShape) -> str:
    """The first line of the shape's docstring, to follow its name after a colon."""
    line = next(iter((shape.__doc__ or "").strip().splitlines()), "")
    first_word = line.split(" ", 1)[0]
    return line if any(c.isupper() for c in first_word[1:]) else line[:1].lower() + line[1:]


def _key(field: Field) -> str:
    optional = ", optional" if not field.required else ""
    return f"- `{field.name}` ({_type_text(field.type)}{optional}): {field.doc}"


def _json_output(shapes: tuple[JsonShape, ...], level: int) -> str:
    parts = [f"\n{'#' * level} JSON output (`-o json`)\n"]
    if len(shapes) > 1:
        parts.append(f"\nOne of: {', '.join(f'`{shape_name(s)}`' for s in shapes)}.\n")
    for shape in shapes_within(shapes):
        parts.append(f"\n`{shape_name(shape)}`: {_summary(shape)}\n\n")
        parts.append("\n".join(_key(field) for field in fields_of(shape)) + "\n")
    return "".join(parts)


def render() -> str:
    parts = [_HEADER]
    for path, parser, summary in _commands(build_parser()):
        leaf = parser.get_default("handler") is not None
        level = min(len(path) + 1, 4)
        parts.append(f"\n{'#' * level} `dbkeeper {' '.join(path)}`\n")
        parts.append(f"\n{summary[:1].upper()}{summary[1:]}.\n")
        if not leaf:
            continue
        parts.append(f"\n{parser.description}\n" if parser.description else "")
        options = [
            _option(a)
            for a in parser._actions
            if not isinstance(a, argparse._HelpAction | argparse._SubParsersAction)
        ]
        if options:
            parts.append("\n" + "\n".join(options) + "\n")
        shapes: tuple[JsonShape, ...] | None = parser.get_default("json_shapes")
        if shapes:
            parts.append(_json_output(shapes, level + 1))
    return "".join(parts)


if __name__ == "__main__":
    print(render(), end="")
