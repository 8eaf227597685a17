"""The parsers of ``dbkeeper plan|migrate|status|history|lint`` (handlers:
:mod:`dbkeeper.cli.migrate_commands`)."""

from __future__ import annotations

import argparse
import os
from datetime import timedelta
from pathlib import Path

from dbkeeper.cli.common import add_connection_args, add_output_arg, deferred, duration_arg
from dbkeeper.cli.job_result import RESULT_LIMIT_BYTES
from dbkeeper.json_shapes.migrate import (
    DescribeJson,
    HistoryJson,
    LintJson,
    MigrateJson,
    PlanJson,
    StatusJson,
)
from dbkeeper.vocabulary import LINT_MODES

_HANDLERS = "dbkeeper.cli.migrate_commands"
DEFAULT_SET = "healthcare"
SET_SOURCE_LIMIT = 300


def _add_set_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--resource",
        type=Path,
        default=None,
        metavar="FILE",
        help="a DatabaseSchema manifest: its migrations settings (set, target, timeouts, "
        "lint, consent, approvals) are the defaults and flags override them; without "
        "--dsn/$DBKEEPER_DSN the database comes from it with PGUSER/PGPASSWORD",
    )
    parser.add_argument(
        "--set",
        dest="set_name",
        default=None,
        metavar="NAME",
        help=f"migration set to use (default: {DEFAULT_SET})",
    )
    parser.add_argument(
        "--migrations-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder holding migration sets (default: the bundled ones, or "
        "$DBKEEPER_MIGRATIONS_DIR)",
    )


def _add_move_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target",
        default=None,
        help="where to move: head (default), base, a revision id, or relative -N / +N",
    )
    parser.add_argument(
        "--lint",
        choices=LINT_MODES,
        default=None,
        help="lint the SQL with squawk: off, warn (default) or block (unapproved "
        "findings stop the move)",
    )


def _add_result_file_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--result-file",
        type=Path,
        default=None,
        metavar="PATH",
        help="also write the outcome as one JSON object of at most "
        f"{RESULT_LIMIT_BYTES} bytes to PATH, whatever it is (for a Job: "
        "/dev/termination-log)",
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    plan = subparsers.add_parser(
        "plan",
        help="show the SQL a migration would run, with lint findings",
        description="Show each step from the database's revision (or from base without a "
        "database) to the target, with the SQL it runs and what the lint finds.",
    )
    add_connection_args(plan)
    _add_set_args(plan)
    _add_move_args(plan)
    add_output_arg(plan, PlanJson)
    plan.set_defaults(handler=deferred(_HANDLERS, "run_plan"))

    move = subparsers.add_parser(
        "migrate",
        help="move the database to a target revision",
        description="Move the database to the target revision, one transaction per "
        "revision, under an advisory lock, recording each step in the history table.",
    )
    add_connection_args(move)
    _add_set_args(move)
    _add_move_args(move)
    move.add_argument(
        "--allow-downgrade",
        action="store_true",
        default=None,
        help="consent to moving below the current revision (reverting revisions)",
    )
    move.add_argument(
        "--approve",
        action="append",
        default=[],
        metavar="REV",
        help="apply revision REV despite lint findings (repeatable)",
    )
    move.add_argument(
        "--lock-timeout",
        type=duration_arg,
        default=None,
        help="lock_timeout per statement (default 5s)",
    )
    move.add_argument(
        "--statement-timeout",
        type=duration_arg,
        default=None,
        help="statement_timeout per statement (default 15m)",
    )
    move.add_argument(
        "--lock-retries",
        type=int,
        default=None,
        help="retries of a revision that hit the lock timeout (default 3)",
    )
    move.add_argument(
        "--retry-backoff",
        type=duration_arg,
        default=timedelta(seconds=1),
        help="wait before the first retry, doubled each time (default 1s)",
    )
    move.add_argument(
        "--wait",
        type=duration_arg,
        default=timedelta(seconds=30),
        help="how long to wait for another migration of the database to finish (default 30s)",
    )
    move.add_argument(
        "--actor",
        default=os.environ.get("USER") or "dbkeeper",
        help="who is migrating, recorded in the history (default: $USER)",
    )
    move.add_argument(
        "--set-source",
        default=None,
        metavar="TEXT",
        help="where the set's files came from (a ConfigMap's version, an image digest), "
        f"recorded in every history row; one line of up to {SET_SOURCE_LIMIT} characters",
    )
    add_output_arg(move, MigrateJson)
    _add_result_file_arg(move)
    move.set_defaults(handler=deferred(_HANDLERS, "run_migrate"))

    under_migrate = move.add_subparsers(dest="migrate_command", metavar="[describe]")
    describe = under_migrate.add_parser(
        "describe",
        help="list the set's revisions with checksums and lint flags (no database)",
        description="Render and lint each revision of the set both ways, offline, and "
        "list one line per revision, base side first: '<id> <checksum prefix> <flags>'. "
        "Flags: u/d the upgrade/downgrade has a risky finding, f/g it has any finding, "
        "o the revision runs online; - for none. Options go after 'describe'.",
    )
    _add_set_args(describe)
    add_output_arg(describe, DescribeJson)
    _add_result_file_arg(describe)
    describe.set_defaults(handler=deferred(_HANDLERS, "run_describe"))

    status = subparsers.add_parser(
        "status",
        help="show the database's revision, pending revisions and drift",
        description="Read-only: the database's current revision, the set's head, the "
        "revisions still to apply, and drift (applied revisions whose files no longer "
        "match the checksums recorded when they ran).",
    )
    add_connection_args(status)
    _add_set_args(status)
    add_output_arg(status, StatusJson)
    status.set_defaults(handler=deferred(_HANDLERS, "run_status"))

    history = subparsers.add_parser(
        "history",
        help="show the migration history recorded in the database",
        description="Read-only: the moves recorded in dbkeeper.migration_history, newest "
        "first: revision, direction, outcome, duration and who moved it.",
    )
    add_connection_args(history)
    history.add_argument("--limit", type=int, default=50, help="rows to show (default 50)")
    add_output_arg(history, HistoryJson)
    history.set_defaults(handler=deferred(_HANDLERS, "run_history"))

    lint = subparsers.add_parser(
        "lint",
        help="lint migration SQL with squawk; exit 1 when something is found",
        description="Lint SQL files given as arguments, or else the steps of the set from "
        "the database's revision (or base) to the target.",
    )
    lint.add_argument("files", nargs="*", type=Path, metavar="FILE", help="SQL files to lint")
    add_connection_args(lint)
    _add_set_args(lint)
    lint.add_argument("--target", default=None, help="lint the steps up to this target")
    add_output_arg(lint, LintJson)
    lint.set_defaults(handler=deferred(_HANDLERS, "run_lint"))
