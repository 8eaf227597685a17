"""The parsers of ``dbkeeper crds write|check|print`` (handlers:
:mod:`dbkeeper.cli.crd_commands`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dbkeeper.cli.common import deferred

_HANDLERS = "dbkeeper.cli.crd_commands"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "crds", help="write or check the CustomResourceDefinitions generated from the models"
    )
    actions = parser.add_subparsers(dest="crds_action", metavar="ACTION", required=True)
    for name, handler, help_text in (
        ("write", "write_crds", "regenerate the CRD files (what `make crds` runs)"),
        ("check", "check_crds", "exit 1 when the committed CRD files differ from the models"),
        ("print", "print_crds", "print the CRD YAML, e.g. for `kubectl apply -f -`"),
    ):
        action = actions.add_parser(name, help=help_text, description=f"{help_text}.")
        if name != "print":
            action.add_argument(
                "--dir",
                type=Path,
                default=None,
                help="folder of the CRD files (default: the project's crds/)",
            )
        action.set_defaults(handler=deferred(_HANDLERS, handler))
