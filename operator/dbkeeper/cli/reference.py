"""docs/cli.md, written from the parsers themselves so it cannot go stale.

``dbkeeper crds``-style: ``python -m dbkeeper.cli.reference`` prints it, and a unit test
compares the committed file with what the parsers say now.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from dbkeeper.cli import build_parser

_HEADER = """# The dbkeeper command line

Written from the command's own parsers (`python -m dbkeeper.cli.reference >
docs/cli.md`; a unit test fails when this file and the parsers disagree).

Every command prints text for people, or with `-o json` exactly one JSON object (never a
bare list, so a field can be added without breaking a script). A failure is one line
`dbkeeper: error: <reason>` on stderr, exit code 1, or 2 for a usage mistake; passwords
appear in neither stream. Connections come from `--dsn` or `$DBKEEPER_DSN` (prefer the
variable: arguments are visible to other users of the machine), and for `dbkeeper wait`
also from libpq's `PG*` variables.

Long work shows progress on stderr: `seed` counts patients, `migrate` numbers each
revision `[i/n]`, and `backup create|restore|verify|prune` and `audit verify` show the
time taken so far. On a terminal it is a bar, wiped if the command fails; in a log, a
pipe or with `-o json` it is a line starting `progress:` every 30 s of work (a short
command prints none), so the error of a failed command stays its one line.
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


def render() -> str:
    parts = [_HEADER]
    for path, parser, summary in _commands(build_parser()):
        leaf = parser.get_default("handler") is not None
        parts.append(f"\n{'#' * min(len(path) + 1, 4)} `dbkeeper {' '.join(path)}`\n")
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
    return "".join(parts)


if __name__ == "__main__":
    print(render(), end="")
