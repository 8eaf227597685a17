"""The ``dbkeeper`` command: one entry point, one module of sub-commands per concern.

Each ``*_commands`` module has ``register(subparsers)`` that adds its sub-commands and
sets ``handler`` on each to a function ``(argparse.Namespace) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from dbkeeper import __version__
from dbkeeper.cli.common import CommandError, fail

# Sub-command modules, in the order they appear in --help. Modules that are not there
# (yet) are skipped so a partial install still offers what it has.
_COMMAND_MODULES = (
    "dbkeeper.cli.migrate_commands",
    "dbkeeper.cli.backup_commands",
    "dbkeeper.cli.pooler_commands",
    "dbkeeper.cli.audit_commands",
    "dbkeeper.cli.seed_commands",
    "dbkeeper.cli.crd_commands",
    "dbkeeper.cli.operator_commands",
    "dbkeeper.cli.demo_commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dbkeeper",
        description="Keep PostgreSQL databases healthy: migrations, pooling, backups.",
    )
    parser.add_argument("--version", action="version", version=f"dbkeeper {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except CommandError as exc:
        return fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    except BrokenPipeError:
        # The reader went away (`dbkeeper history | head`): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
