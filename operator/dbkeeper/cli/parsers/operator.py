"""The parser of ``dbkeeper operator`` (handler: :mod:`dbkeeper.cli.operator_commands`)."""

from __future__ import annotations

import argparse

from dbkeeper.cli.common import deferred

_HANDLERS = "dbkeeper.cli.operator_commands"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "operator",
        help="run the operator against the current Kubernetes cluster",
        description="Run the dbkeeper operator. Configured by DBKEEPER_* environment "
        "variables (see docs/configuration.md); in a pod it uses the service account, "
        "elsewhere $KUBECONFIG.",
    )
    parser.set_defaults(handler=deferred(_HANDLERS, "run_operator"))
