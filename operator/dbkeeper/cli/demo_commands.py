"""``dbkeeper demo up | down | status``: the local demo behind ``make demo``.

The demo keeps its state in ``$DBKEEPER_DEMO_DIR`` (default ``.dbkeeper/`` under the
current directory); see :mod:`dbkeeper.demo`.
"""

from __future__ import annotations

import argparse
import sys

from dbkeeper.cli.common import CommandError
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


def run_up(args: argparse.Namespace) -> int:
    try:
        demo_up(_folder(), sys.stdout)
    except DemoError as exc:
        raise CommandError(str(exc)) from None
    return 0


def run_down(args: argparse.Namespace) -> int:
    try:
        demo_down(_folder(), sys.stdout)
    except DemoError as exc:
        raise CommandError(str(exc)) from None
    return 0


def run_status(args: argparse.Namespace) -> int:
    try:
        demo_status(_folder(), sys.stdout)
    except DemoError as exc:
        raise CommandError(str(exc)) from None
    return 0
