"""The ``dbkeeper`` command: one entry point, one module of sub-commands per concern.

Each ``*_commands`` module has ``register(subparsers)`` that adds its sub-commands and
sets ``handler`` on each to a function ``(argparse.Namespace) -> int``.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
from collections.abc import Sequence
from contextlib import nullcontext
from typing import NoReturn

from dbkeeper import __version__
from dbkeeper.cli.common import CommandError, fail
from dbkeeper.interrupt import Interrupted, interrupts_raise

# Sub-command modules, in the order they appear in --help, with the commands each adds.
# Only the module of the command being run is imported: the others pull in Alembic,
# kopf or the Kubernetes client, which would add a second to every invocation.
_COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "dbkeeper.cli.parsers.migrate": ("plan", "migrate", "status", "history", "lint"),
    "dbkeeper.cli.parsers.backup": ("backup",),
    "dbkeeper.cli.parsers.pooler": ("pooler",),
    "dbkeeper.cli.parsers.audit": ("audit",),
    "dbkeeper.cli.parsers.wait": ("wait",),
    "dbkeeper.cli.parsers.types": ("types",),
    "dbkeeper.cli.parsers.seed": ("seed",),
    "dbkeeper.cli.parsers.crd": ("crds",),
    "dbkeeper.cli.parsers.operator": ("operator",),
    "dbkeeper.cli.parsers.demo": ("demo",),
}


def _modules_for(argv: Sequence[str] | None) -> list[str]:
    words = list(sys.argv[1:] if argv is None else argv)
    command = next((word for word in words if not word.startswith("-")), None)
    for module, commands in _COMMAND_MODULES.items():
        if command in commands:
            return [module]
    return list(_COMMAND_MODULES)  # --help, a typo: show every command


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes are one line on stderr, like every other error, and exit 2.

    Sub-command parsers are of the same class (argparse creates them with the class of
    the parser they hang from).
    """

    def error(self, message: str) -> NoReturn:
        fail(f"{message} (see: {self.prog} --help)", 2)
        sys.exit(2)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="dbkeeper",
        description="Keep PostgreSQL databases healthy: migrations, pooling, backups.",
    )
    parser.add_argument("--version", action="version", version=f"dbkeeper {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _modules_for(argv) if argv is not None else list(_COMMAND_MODULES):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(sub)
    return parser


# Commands that own their signal handling: the operator (kopf stops gracefully on
# SIGTERM) and the pooler supervisors (they forward signals to pgbouncer).
_OWN_SIGNALS = frozenset({"operator", "pooler"})


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(words)
    args = parser.parse_args(words)
    # SIGTERM (a deleted pod, `kill`) ends a command the way Ctrl-C does: child tools are
    # stopped, transactions rolled back, and one line says so; never a silent exit 143.
    stopping = nullcontext() if args.command in _OWN_SIGNALS else interrupts_raise()
    try:
        with stopping:
            code: int = args.handler(args)
    except CommandError as exc:
        return fail(str(exc), exc.exit_code)
    except KeyboardInterrupt as stop:
        how = stop.signal_name if isinstance(stop, Interrupted) else "SIGINT"
        return fail(f"interrupted by {how} before the command finished", 130)
    except BrokenPipeError:
        # The reader went away (`dbkeeper history | head`): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return code


def run() -> NoReturn:
    """The ``dbkeeper`` executable: :func:`main`, then exit.

    The command has finished and closed what it opened, so the interpreter's last
    garbage collection would only walk the objects Alembic, SQLAlchemy and the rest
    built at import, to free memory the process is about to give back anyway: about
    a tenth of a second of every command that migrates. Freezing them first makes
    that collection skip them. (``main`` itself does not: tests call it many times in
    one process.)
    """
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()
