"""``dbkeeper demo up | down | status``: the local demo behind ``make demo``.

The demo keeps its state in ``$DBKEEPER_DEMO_DIR`` (default ``.dbkeeper/`` under the
current directory); see :mod:`dbkeeper.demo`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TextIO

import psycopg

from dbkeeper.cli.common import CommandError
from dbkeeper.conninfo import redact
from dbkeeper.demo import DemoError, DemoFolder, demo_dir, demo_down, demo_status, demo_up


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="run the whole product locally: PostgreSQL, migrations, pooler, backups",
        description="State lives in $DBKEEPER_DEMO_DIR (default ./.dbkeeper).",
    )
    sub = demo.add_subparsers(dest="demo_command", metavar="ACTION", required=True)
    up = sub.add_parser("up", help="start (or check) the demo and explain each step")
    up.set_defaults(handler=run_up)
    down = sub.add_parser("down", help="stop the demo's pooler and server and remove its folder")
    down.set_defaults(handler=run_down)
    status = sub.add_parser("status", help="show the demo resource's status")
    status.set_defaults(handler=run_status)


def _folder() -> DemoFolder:
    return DemoFolder(demo_dir())


def _run(action: Callable[[DemoFolder, TextIO], None]) -> int:
    """Run ``action``; what stops it becomes the one-line error of the command."""
    try:
        action(_folder(), sys.stdout)
    except DemoError as exc:
        raise CommandError(str(exc)) from None
    except psycopg.Error as exc:
        raise CommandError(f"database error: {redact(str(exc)).strip()}") from None
    except (RuntimeError, OSError) as exc:
        raise CommandError(str(exc)) from None
    return 0


def run_up(args: argparse.Namespace) -> int:
    return _run(demo_up)


def run_down(args: argparse.Namespace) -> int:
    return _run(demo_down)


def run_status(args: argparse.Namespace) -> int:
    return _run(demo_status)
