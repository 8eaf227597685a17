"""The CLI starts fast: building any command's parser imports no engine.

`dbkeeper --help`, `dbkeeper status --help` and the parsing of every command load only
the parsers (dbkeeper/cli/parsers/); a command's handler and the libraries it needs
(psycopg, pydantic, Alembic, kopf, ...) are imported when it runs. The start-up times
themselves are measured by `make bench` (benchmarks/), not here.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dbkeeper.cli import _COMMAND_MODULES, build_parser
from dbkeeper.cli.common import deferred
from dbkeeper.cli.reference import _commands

HEAVY = ("psycopg", "pydantic", "alembic", "sqlalchemy", "kopf", "kubernetes", "yaml", "boto3")
COMMANDS = [command for commands in _COMMAND_MODULES.values() for command in commands]

_PROBE = """
import json, sys
from dbkeeper.cli import main
sys.argv = ["dbkeeper", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def _modules_after(*argv: str) -> set[str]:
    """The modules loaded once ``dbkeeper ARGV`` has printed its help."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(argv)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    loaded: list[str] = json.loads(done.stderr.strip().splitlines()[-1])
    return set(loaded)


def _heavy(modules: set[str]) -> list[str]:
    return sorted({name.split(".")[0] for name in modules} & set(HEAVY))


@pytest.mark.parametrize(
    "argv", [("--help",), ("status", "--help")] + [(command, "--help") for command in COMMANDS]
)
def test_help_imports_no_engine(argv: tuple[str, ...]) -> None:
    modules = _modules_after(*argv)
    assert _heavy(modules) == [], argv
    handlers = sorted(m for m in modules if m.endswith("_commands"))
    assert handlers == [], f"{argv} imported handler modules {handlers}"


def test_every_command_names_a_handler_that_exists() -> None:
    parsers = [parser for _, parser, _ in _commands(build_parser())]
    leaves = [p for p in parsers if p.get_default("handler") is not None]
    assert len(leaves) >= 20
    for parser in leaves:
        handler = parser.get_default("handler")
        assert isinstance(handler, deferred), parser.prog
        assert callable(handler.resolve()), parser.prog
