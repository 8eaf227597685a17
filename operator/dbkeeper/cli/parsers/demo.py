"""The parsers of ``dbkeeper demo up|down|status`` (handlers:
:mod:`dbkeeper.cli.demo_commands`)."""

from __future__ import annotations

import argparse

from dbkeeper.cli.common import deferred

_HANDLERS = "dbkeeper.cli.demo_commands"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="run the whole product locally: PostgreSQL, migrations, pooler, backups",
        description="State lives in $DBKEEPER_DEMO_DIR (default ./.dbkeeper).",
    )
    sub = demo.add_subparsers(dest="demo_command", metavar="ACTION", required=True)
    up = sub.add_parser("up", help="start (or check) the demo and explain each step")
    up.set_defaults(handler=deferred(_HANDLERS, "run_up"))
    down = sub.add_parser("down", help="stop the demo's pooler and server and remove its folder")
    down.set_defaults(handler=deferred(_HANDLERS, "run_down"))
    status = sub.add_parser("status", help="show the demo resource's status")
    status.set_defaults(handler=deferred(_HANDLERS, "run_status"))
