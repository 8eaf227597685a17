"""docs/cli.md is what the parsers say, and the parsers leave nothing unexplained."""

from __future__ import annotations

import argparse

from dbkeeper.cli import build_parser
from dbkeeper.cli.reference import _commands, render
from dbkeeper.paths import source_root


def test_the_committed_reference_is_what_the_parsers_say() -> None:
    committed = (source_root() / "docs" / "cli.md").read_text()
    assert committed == render(), (
        "docs/cli.md is stale: python -m dbkeeper.cli.reference > docs/cli.md"
    )


def test_every_command_has_a_summary_and_every_action_a_description() -> None:
    commands = list(_commands(build_parser()))
    assert len(commands) >= 25
    for path, parser, summary in commands:
        assert summary, f"dbkeeper {' '.join(path)} has no help line"
        if parser.get_default("handler") is not None:
            assert parser.description, f"dbkeeper {' '.join(path)} has no description"


def test_every_option_says_what_it_does() -> None:
    for path, parser, _ in _commands(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            name = action.option_strings or [action.dest]
            assert action.help, f"dbkeeper {' '.join(path)} {name[0]} has no help text"
